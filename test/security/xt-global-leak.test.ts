// cross-tenant: tenants A and B run the SAME plugin file. A stores a secret in a global,
// in a module variable and on a builtin prototype; B's plugin must never see it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugin, send, startLab, type Lab } from './helpers.ts';

const SHARED = plugin(`
let moduleStash = '';
export function access(pdk) {
  const secret = pdk.request.getHeader('x-secret');
  if (typeof secret === 'string') { globalThis.stash = secret; moduleStash = secret; Object.prototype.stash = secret; }
  pdk.response.setHeader('x-seen', JSON.stringify([globalThis.stash ?? null, moduleStash, ({}).stash ?? null]));
}
`, 'stasher');

const YAML = `
tenants:
  - name: a
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/a] }]
    plugins: [{ name: stasher, path: ./stasher.ts }]
  - name: b
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/b] }]
    plugins: [{ name: stasher, path: ./stasher.ts }]
  - name: good
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: benign, path: ./benign.ts }]
`;

describe('cross-tenant: globals of the same plugin code', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: '', yaml: YAML, files: { 'stasher.ts': SHARED } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it("B never sees A's global, module variable or prototype", async () => {
    const [a, b0] = await Promise.all([send(`${lab.url}/a`, { headers: { 'x-secret': 'tenant-a-secret' } }), send(`${lab.url}/b`)]);
    expect(a.status).toBe(200);
    expect(a.headers['x-seen']).toContain('tenant-a-secret');
    expect(b0.headers['x-seen']).toBe('[null,"",null]');
    const b = await send(`${lab.url}/b`);
    expect(b.status).toBe(200);
    expect(b.headers['x-seen']).toBe('[null,"",null]');
    // and A still has its own state (the isolates are not shared, not reset)
    expect((await send(`${lab.url}/a`)).headers['x-seen']).toContain('tenant-a-secret');
    expect((await send(`${lab.url}/good`)).status).toBe(200);
  });
});
