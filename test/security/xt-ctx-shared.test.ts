// cross-tenant: pdk.ctx.shared travels with a request between phases. A's request is in
// flight (its upstream answers slowly) while B's requests run all their phases in
// between; B's headerFilter must never see A's ctx, and A's must see only its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { plugin, send, startLab, type Lab } from './helpers.ts';

const CTX = plugin(`
export function access(pdk) {
  const who = pdk.request.getHeader('x-who');
  if (typeof who === 'string') pdk.ctx.set('who', who);
  pdk.ctx.shared.list = [who];
}
export function headerFilter(pdk) {
  pdk.response.setHeader('x-ctx', JSON.stringify(pdk.ctx.shared));
}
`, 'ctxer');

const YAML = `
tenants:
  - name: a
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/a] }]
    plugins: [{ name: ctxer, path: ./ctxer.ts }]
  - name: b
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/b] }]
    plugins: [{ name: ctxer, path: ./ctxer.ts }]
`;

function slowForA(req: IncomingMessage, res: ServerResponse): void {
  const delay = req.url?.startsWith('/a') ? 150 : 0;
  req.resume();
  setTimeout(() => res.end('ok'), delay);
}

describe('cross-tenant: pdk.ctx.shared across interleaved requests', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: '', yaml: YAML, files: { 'ctxer.ts': CTX }, upstream: slowForA });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('each request sees only its own ctx', async () => {
    const a = send(`${lab.url}/a`, { headers: { 'x-who': 'alice-of-a' } });
    await new Promise((r) => setTimeout(r, 30));
    const bs = await Promise.all([1, 2, 3].map(() => send(`${lab.url}/b`)));
    for (const b of bs) {
      expect(b.status).toBe(200);
      expect(b.headers['x-ctx']).toBe('{"list":[null]}');
    }
    const ra = await a;
    expect(ra.status).toBe(200);
    expect(ra.headers['x-ctx']).toBe('{"who":"alice-of-a","list":["alice-of-a"]}');
  });
});
