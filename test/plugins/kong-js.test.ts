import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

// Test plugins in the shape of kong-js-pdk's examples (js-hello, js-status, js-goodbye,
// js-transform), written for these tests: CommonJS, a class with async phase methods taking
// `kong`, `module.exports = { Plugin, Schema, Version, Priority }`. Not one line is Isogate's.
const HELLO = `'use strict';
class KongPlugin {
  constructor(config) { this.config = config }
  async access(kong) {
    let host = await kong.request.getHeader("host")
    if (host === undefined) return await kong.log.err("unable to get header for request")
    let message = this.config.message || "hello"
    await Promise.all([
      kong.response.setHeader("x-hello-from-javascript", "Javascript says " + message + " to " + host),
      kong.response.setHeader("x-javascript-pid", process.pid),
    ])
  }
}
module.exports = { Plugin: KongPlugin, Schema: [{ message: { type: "string" } }], Version: '0.1.0', Priority: 0 }
`;

const STATUS = `'use strict';
class KongPlugin {
  constructor(config) { this.config = config }
  async access(kong) {
    let userId = await kong.request.getHeader("userId")
    if (!userId) return kong.response.exit(403)
    let message = this.config.message || "hello"
    await Promise.all([kong.response.setHeader("x-welcome", "Javascript says " + message + " to " + userId)])
  }
}
module.exports = { Plugin: KongPlugin, Schema: [{ message: { type: "string" } }], Version: '0.1.0', Priority: 10 }
`;

const GOODBYE = `'use strict';
class KongPlugin {
  constructor(config) { this.config = config; this.message = config.message || 'goodbye' }
  async access(kong) {
    await kong.service.request.setHeader('x-goodbye-from-javascript', 'Javascript says ' + this.message)
  }
}
module.exports = { Plugin: KongPlugin, Name: 'goodbye', Schema: [{ message: { type: 'string' } }], Version: '0.1.0', Priority: 5 }
`;

const TRANSFORM = `'use strict';
class KongPlugin {
  constructor(config) { this.config = config }
  async access(kong) {
    await Promise.all([
      kong.service.request.setQuery({ "js-transform": "v0.1.0", "path": await kong.request.getPathWithQuery() }),
      kong.service.request.setHeaders({ "x-scheme": await kong.request.getScheme(), "x-port": String(await kong.request.getPort()) }),
    ])
    try {
      await kong.request.getRawBody()
    } catch (e) {
      await kong.service.request.setHeader("x-raw-body-error", e.name + ": " + e.message)
    }
  }
  async response(kong) {
    if (await kong.response.getSource() == "service") {
      let body = await kong.service.response.getRawBody()
      body = "Response body from upstream:\\n" + body + "\\nBody size: " + body.length + "\\n"
      await kong.response.exit(await kong.response.getStatus(), body)
    }
  }
}
module.exports = { Plugin: KongPlugin, Schema: [{ message: { type: "string" } }], Version: '0.1.0', Priority: 0 }
`;

/** kong-js-pdk's TypeScript shape: a type import of its kong typings (not shipped here: only used as a type, it is erased). */
const TS_HELLO = `'use strict';
import kong from "../kong"
class KongPlugin {
  config: any;
  constructor(config: any) { this.config = config }
  async access(kong: kong) {
    let host = await kong.request.getHeader("host")
    let message = this.config.message || "hello"
    await kong.response.setHeader("x-hello-from-typescript", "Typescript says " + message + " to " + host)
  }
}
module.exports = { Plugin: KongPlugin, Name: 'ts-hello', Schema: [{ message: { type: "string" } }], Version: '0.1.0', Priority: 3 }
`;

/** Hostile: looks for a way out through everything kong and its realm hand it. */
const PROBE = `'use strict';
class KongPlugin {
  async access(kong) {
    const found = []
    try { await kong.request.constructor('return 1'); found.push('constructor callable') } catch (e) {}
    const viaFunction = kong.request.getHeader.constructor('return typeof globalThis.process.binding + "," + Object.keys(globalThis.process.env).length')()
    let nginx = ''
    try { await kong.nginx.getVar('remote_addr') } catch (e) { nginx = e.name + ': ' + e.message }
    const frozen = Object.isFrozen(kong)
    try { kong.request = null } catch (e) {}
    return kong.response.exit(200, { found, viaFunction, nginx, frozen, pid: typeof process.pid })
  }
}
module.exports = { Plugin: KongPlugin, Version: '1.0.0', Priority: 1 }
`;

describe('Kong JavaScript plugins, unmodified (kong-js-pdk shape)', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(
      `
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: hello, service: echo, paths: [/hello] }
      - { name: status, service: echo, paths: [/status] }
      - { name: transform, service: echo, paths: [/transform] }
      - { name: probe, service: echo, paths: [/probe] }
    plugins:
      - { name: js-hello, path: ./js-hello.js, route: hello, config: { message: hi } }
      - { name: goodbye, path: ./js-goodbye.js, route: hello }
      - { name: ts-hello, path: ./ts-hello.ts, route: hello }
      - { name: js-status, path: ./js-status.js, route: status }
      - { name: js-transform, path: ./js-transform.js, route: transform }
      - { name: js-probe, path: ./js-probe.js, route: probe }
`,
      { 'js-hello.js': HELLO, 'js-status.js': STATUS, 'js-goodbye.js': GOODBYE, 'js-transform.js': TRANSFORM, 'js-probe.js': PROBE, 'ts-hello.ts': TS_HELLO },
    );
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('js-hello: awaits kong.request.getHeader, sets response headers in Promise.all; goodbye (Name) sets an upstream header', async () => {
    const r = await send(`${gw.url}/hello`, { headers: { host: 'example.com' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-hello-from-javascript']).toBe('Javascript says hi to example.com');
    expect(r.headers['x-javascript-pid']).toMatch(/^\d+$/);
    expect(r.json().headers['x-goodbye-from-javascript']).toBe('Javascript says goodbye');
    expect(r.headers['x-hello-from-typescript']).toBe('Typescript says hello to example.com');
  });

  it('js-status: kong.response.exit(403) ends the request; with the header it passes', async () => {
    const refused = await send(`${gw.url}/status`);
    expect(refused.status).toBe(403);
    const ok = await send(`${gw.url}/status`, { headers: { userid: 'ada' } });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-welcome']).toBe('Javascript says hello to ada');
  });

  it('js-transform: setQuery and setHeaders upstream; the response phase rewrites the body; an unsupported call rejects with PDKError', async () => {
    const r = await send(`${gw.url}/transform/x?a=1`);
    expect(r.status).toBe(200);
    expect(r.body.startsWith('Response body from upstream:\n')).toBe(true);
    const upstream = JSON.parse(r.body.split('\n')[1]);
    expect(upstream.url).toBe('/transform/x?js-transform=v0.1.0&path=%2Ftransform%2Fx%3Fa%3D1');
    expect(upstream.headers['x-scheme']).toBe('http');
    expect(upstream.headers['x-port']).toBe(String(gw.gw.proxyAddress.port));
    expect(upstream.headers['x-raw-body-error']).toBe('PDKError: PDK method kong.request.get_raw_body failed: request.getRawBody needs the plugin to export reads: [\'body\']');
    expect(r.body).toMatch(/\nBody size: \d+\n$/);
  });

  it('hostile: the kong object is frozen, its namespaces lead nowhere, the process is a stand-in', async () => {
    const r = await send(`${gw.url}/probe`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({
      found: [],
      viaFunction: 'undefined,0',
      nginx: 'PDKError: PDK method kong.nginx.get_var failed: not supported by Isogate (see pdk-bridge/README.md, Kong JS plugins)',
      frozen: true,
      pid: 'number',
    });
  });
});
