// cross-request (same tenant): pdk.ctx of one request never leaks into the next one, in
// the request phases nor in the batched log phase (many requests in one call).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  pdk.response.setHeader('x-prev', JSON.stringify(pdk.ctx.shared));
  const u = pdk.request.getHeader('x-user');
  pdk.ctx.set('user', u);
  pdk.ctx.set('n' + u, 1);
}
export function log(pdk) {
  pdk.log.info('ctx-at-log ' + pdk.request.getHeader('x-user') + ' ' + JSON.stringify(pdk.ctx.shared));
  pdk.ctx.set('fromLog', pdk.request.getHeader('x-user'));
}
`);

describe('cross-request: ctx of one request does not reach the next', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('each access sees an empty ctx; each log sees only its own request\'s ctx', async () => {
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
    const replies = await Promise.all(users.map((u) => send(`${lab.url}/evil`, { headers: { 'x-user': u } })));
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.headers['x-prev']).toBe('{}');
    }
    const second = await send(`${lab.url}/evil`, { headers: { 'x-user': 'u7' } });
    expect(second.headers['x-prev']).toBe('{}');
    const deadline = Date.now() + 2000;
    const lines = () => lab.logs.filter((l) => String(l.msg).startsWith('ctx-at-log '));
    while (Date.now() < deadline && lines().length < 7) await new Promise((r) => setTimeout(r, 20));
    expect(lines().length).toBe(7);
    for (const l of lines()) {
      const [, user, json] = /^ctx-at-log (\S+) (.*)$/.exec(String(l.msg))!;
      expect(JSON.parse(json)).toEqual({ user, ['n' + user]: 1 });
    }
    await expectStillServes(lab);
  });
});
