// async: many requests of one tenant suspended in the response phase at once, in one
// isolate, resumed in an order the attacker picks (its own delays). Each resumed chain
// must see its own request's buffered upstream body, upstream headers and request, and
// each client must get its own body: a resume that put back another frame's body would
// hand one client's upstream response to another.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callingOutYaml, expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function response(pdk, config) {
  const id = pdk.request.getHeader('x-id');
  await pdk.http.request(config.up + '/slow?ms=' + pdk.request.getHeader('x-delay'));
  const seen = [pdk.response.getRawBody(), pdk.serviceResponse.getHeader('x-up-id'), pdk.request.getHeader('x-id')];
  await pdk.counters.increment('interleave', 1, 60);
  pdk.response.setHeader('x-seen', seen.join(','));
  pdk.response.setRawBody(pdk.response.getRawBody() + '|' + id);
}
`);

function upstream(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/slow') {
    setTimeout(() => res.end('late'), Number(url.searchParams.get('ms')));
    return;
  }
  const id = String(req.headers['x-id'] ?? '');
  res.writeHead(200, { 'x-up-id': id });
  res.end('up:' + id);
}

describe('async: interleaved response-phase chains keep their own response', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({
      evil: EVIL,
      upstream,
      yaml: callingOutYaml(100),
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('24 chains waiting at once, resumed out of order: each sees and sends only its own', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => `r${i}`);
    // later requests wait less: they resume first, while the earlier ones still wait
    const rs = await Promise.all(ids.map((id, i) => send(`${lab.url}/evil`, { headers: { 'x-id': id, 'x-delay': String(((24 - i) * 13) % 200) } })));
    rs.forEach((r, i) => {
      const id = ids[i];
      expect(r.status, r.body).toBe(200);
      expect(r.headers['x-seen']).toBe(`up:${id},${id},${id}`);
      expect(r.body).toBe(`up:${id}|${id}`);
      expect(r.headers['content-length']).toBe(String(r.body.length));
    });
    await expectStillServes(lab);
  }, 30_000);
});
