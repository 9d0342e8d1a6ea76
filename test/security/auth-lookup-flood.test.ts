// auth lookups: a plugin floods credential lookups past the async cap (32 per phase),
// catching each refusal; another asks for scrypt password checks in bulk (one request must
// not buy more than ASYNC_CAPS.maxPasswordChecks of them). The first ends as too_large, the
// second gets an error answer past the cap, and the isolate keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.ts';
import { ASYNC_CAPS } from '../../sandbox/limits.ts';
import { lookupPlugin, startLookupLab, type LookupLab } from './auth-lookup-helpers.ts';

const EVIL = lookupPlugin(`
export async function access(pdk: any) {
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'lookups') {
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 5000; i++) {
      try { ps.push(pdk.client.findCredential('key-auth', 'k' + i).catch(() => null)); } catch {}
    }
    await Promise.all(ps);
    pdk.response.exit(200, { made: ps.length });
  }
  if (mode === 'passwords') {
    const out: unknown[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => pdk.client.verifyPassword('b-mallory', i === 9 ? 'evil-pass' : 'guess' + i).then((v: boolean) => out.push(v), (e: any) => out.push(e.message))));
    pdk.response.exit(200, out);
  }
  pdk.response.exit(200, 'calm');
}`);

describe('auth lookups: floods', () => {
  let lab: LookupLab;
  beforeAll(async () => {
    lab = await startLookupLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('lookups past the async cap: the handler ends as too_large, the isolate keeps serving', async () => {
    const r = await send(`${lab.gw.url}/evil`, { headers: { 'x-mode': 'lookups' } });
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(lab.lines.some((l) => /client\.findCredential: more than 32 async PDK calls in one phase/.test(JSON.stringify(l)))).toBe(true);
    const calm = await send(`${lab.gw.url}/evil`);
    expect(calm.status).toBe(200);
    expect(calm.body).toBe('calm');
  });

  it(`password checks past ${ASYNC_CAPS.maxPasswordChecks} in one phase are refused (no scrypt bought)`, async () => {
    const r = await send(`${lab.gw.url}/evil`, { headers: { 'x-mode': 'passwords' } });
    expect(r.status).toBe(200);
    const out = r.json() as unknown[];
    expect(out.filter((v) => v === false)).toHaveLength(ASYNC_CAPS.maxPasswordChecks);
    expect(out.filter((v) => typeof v === 'string' && /more than 2 checks in one phase/.test(v))).toHaveLength(10 - ASYNC_CAPS.maxPasswordChecks);
    // the right password came too late: refused, not checked
    expect(out).not.toContain(true);
    // the next request has its own allowance
    expect((await send(`${lab.gw.url}/evil`)).status).toBe(200);
  });
});
