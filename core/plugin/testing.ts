import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { Gateway } from '../gateway.ts';
import { loadPlugin } from '../../sandbox/plugin-loader.ts';
import { isPluginFolder } from './folder.ts';
import { readManifest } from './manifest.ts';

/**
 * `isogate/testing`: runs a plugin in the real sandbox, as production runs it. A real
 * Gateway starts in this process on 127.0.0.1 with the plugin configured on one route, the
 * real isolate limits apply (cpuMs 50, memoryMb 64 unless `limits` says otherwise), and a
 * real HTTP request goes through it to a real upstream that answers what the test
 * describes. What the client got and what the upstream got come back.
 *
 * @example
 *   const r = await testPlugin({ plugin: import.meta.dirname, config: { header: 'x-id' }, request: { path: '/a' } });
 *   assert.equal(r.upstream?.headers['x-id'] !== undefined, true);
 */
export type FakeRequest = {
  readonly method?: string;
  /** Path and query, e.g. `/orders?page=2` (default `/`). */
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** A string, or an object sent as JSON (with `content-type: application/json` unless given). */
  readonly body?: string | object;
};

export type FakeUpstreamResponse = {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** A string, or an object sent as JSON (with `content-type: application/json` unless given). */
  readonly body?: string | object;
};

export type TestPluginOptions = {
  /** The plugin: its folder (plugin.json) or its module file; relative to the current directory. */
  readonly plugin: string | URL;
  /** The instance's config, validated against the plugin's schema (defaults applied) as in production. */
  readonly config?: Record<string, unknown>;
  /** The tenant's limits (default: the gateway's defaults, cpuMs 50 and memoryMb 64). */
  readonly limits?: { readonly cpuMs?: number; readonly memoryMb?: number };
  /** What the upstream answers (default: 200, empty body). */
  readonly upstream?: FakeUpstreamResponse;
};

export type ClientReply = {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  json<T = unknown>(): T;
};

export type UpstreamRequest = { readonly method: string; readonly path: string; readonly headers: IncomingHttpHeaders; readonly body: string };

/** A line the plugin wrote with pdk.log (and the gateway's lines about its faults). */
export type PluginLogLine = { readonly level: string; readonly msg: string; readonly phase?: string; readonly [key: string]: unknown };

export type TestPluginResult = {
  /** What the client got. */
  readonly client: ClientReply;
  /** What the upstream got; null when the request never reached it (the plugin answered, or failed). */
  readonly upstream: UpstreamRequest | null;
  /** What the plugin logged, the log phase included. */
  readonly logs: readonly PluginLogLine[];
};

/** One request through a gateway made for it, then the gateway stops. */
export async function testPlugin(options: TestPluginOptions & { readonly request?: FakeRequest }): Promise<TestPluginResult> {
  const harness = await startPluginTest(options);
  let result: Omit<TestPluginResult, 'logs'>;
  try {
    result = await harness.request(options.request ?? {});
  } finally {
    await harness.stop();
  }
  return { ...result, logs: harness.logs };
}

export type PluginTest = {
  /** Sends one request; `upstream` overrides the upstream's answer for it. */
  request(req?: FakeRequest, upstream?: FakeUpstreamResponse): Promise<TestPluginResult>;
  /** Every line logged so far (the log phase runs after the response: complete after stop()). */
  readonly logs: readonly PluginLogLine[];
  /** The gateway itself (its `proxyAddress`, `snapshot`...). */
  readonly gateway: Gateway;
  stop(): Promise<void>;
};

/** A gateway and upstream kept up for several requests; stop() them at the end. */
export async function startPluginTest(options: TestPluginOptions): Promise<PluginTest> {
  const plugin = options.plugin instanceof URL ? fileURLToPath(options.plugin) : resolve(options.plugin);
  const name = isPluginFolder(plugin) ? (await readManifest(plugin)).name : (await loadPlugin(plugin)).name;
  let answer: FakeUpstreamResponse = options.upstream ?? {};
  let received: UpstreamRequest | null = null;
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      const { body, type } = encode(answer.body);
      const headers: Record<string, string | string[]> = { ...(type !== null ? { 'content-type': type } : {}), ...answer.headers };
      res.writeHead(answer.status ?? 200, headers);
      res.end(body);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  const dir = await mkdtemp(join(tmpdir(), 'isogate-plugin-test-'));
  const configFile = join(dir, 'gateway.yaml');
  // JSON is YAML: the config a production gateway would load, with one tenant and one route.
  const config = {
    tenants: [{
      name: 'test',
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      services: [{ name: 'upstream', url: upstreamUrl }],
      routes: [{ name: 'all', service: 'upstream', paths: ['/'] }],
      plugins: [{ name, path: plugin, config: options.config ?? {} }],
    }],
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logs: PluginLogLine[] = [];
  const logger = pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, {
    write: (s: string) => {
      const line = JSON.parse(s) as PluginLogLine;
      if ('plugin' in line) logs.push(line);
    },
  });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start({ configFile, listen: { host: '127.0.0.1', port: 0 }, admin: false, logger, accessLog: false });
  } catch (err) {
    upstream.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const agent = new Agent({ keepAliveTimeout: 1000 });
  const base = `http://127.0.0.1:${gateway.proxyAddress.port}`;
  return {
    logs,
    gateway,
    async request(req = {}, override) {
      answer = override ?? options.upstream ?? {};
      received = null;
      const { body, type } = encode(req.body);
      const headers = { ...(type !== null ? { 'content-type': type } : {}), ...req.headers };
      const r = await request(`${base}${req.path ?? '/'}`, { method: (req.method ?? 'GET') as 'GET', headers, body, dispatcher: agent });
      const text = await r.body.text();
      const client: ClientReply = { status: r.statusCode, headers: r.headers, body: text, json: <T>() => JSON.parse(text) as T };
      return { client, upstream: received, logs };
    },
    async stop() {
      await gateway.stop(500);
      await agent.close();
      upstream.closeAllConnections();
      await new Promise<void>((r) => upstream.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function encode(body: string | object | undefined): { body: string | undefined; type: string | null } {
  if (body === undefined || typeof body === 'string') return { body, type: null };
  return { body: JSON.stringify(body), type: 'application/json' };
}

/** The PDK types, for tests that write handlers inline. */
export type { Pdk } from '../../pdk-bridge/types.ts';
