// async: a plugin aims pdk.http at what it must not reach: a host the operator did not
// allow, the admin listener (through an allowed name that resolves to loopback), a URL
// with credentials or another scheme, and a Host header of its choosing. Each is refused
// before any connection, as an error the plugin sees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk, config) {
  const tries = [
    [config.up + '/'],
    ['http://localhost:' + config.admin + '/metrics'],
    ['http://user:pw@localhost:' + config.admin + '/'],
    ['file:///etc/passwd'],
    ['http://allowed.example/', { headers: { host: 'internal' } }],
  ];
  const out = [];
  for (const [url, opts] of tries) {
    try { await pdk.http.request(url, opts); out.push('reached'); } catch (e) { out.push(e.message); }
  }
  pdk.response.exit(200, out);
}
`);

describe('async: outbound calls to refused places', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200 });
    // the admin port is known once the lab runs: give it to the plugin by a reload
    const admin = new URL(lab.adminUrl).port;
    const { readFileSync, writeFileSync } = await import('node:fs');
    const file = lab.gw.configFile;
    const yaml = readFileSync(file, 'utf8')
      .replace('  - name: evil\n', '  - name: evil\n    http: { allow: ["localhost", "allowed.example"] }\n')
      .replace('config: {}', `config: { up: "${lab.up.url}", admin: "${admin}" }`);
    writeFileSync(file, yaml);
    const r = await lab.gw.reload();
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('refuses each', async () => {
    const r = await send(`${lab.url}/evil`);
    const admin = new URL(lab.adminUrl).port;
    expect(r.json()).toEqual([
      `http.request: host 127.0.0.1:${lab.up.port} is not in this tenant's allowlist`,
      expect.stringMatching(/^http\.request: localhost resolves to (127\.0\.0\.1|::1), a loopback or link-local address the allowlist does not name$/),
      'http.request: no credentials in the URL',
      'http.request: only http and https URLs',
      "http.request: header host is the gateway's",
    ]);
    expect(admin).not.toBe('');
    await expectStillServes(lab);
  });
});
