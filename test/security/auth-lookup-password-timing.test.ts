// auth lookups: the basic-auth password check. It runs on the host (scrypt, compared with
// timingSafeEqual), the hash never enters the isolate, and its time tells nothing a
// guesser could use: a wrong password of the same length, a prefix, a longer one all pay a
// full scrypt, and so does a credential id that does not exist (the host hashes against a
// stand-in), so timing does not reveal which credential ids are real.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.ts';
import { lookupPlugin, startLookupLab, type LookupLab } from './auth-lookup-helpers.ts';

const EVIL = lookupPlugin(`
export async function access(pdk: any) {
  const id = pdk.request.getHeader('x-id');
  const pw = pdk.request.getHeader('x-pw') ?? '';
  pdk.response.exit(200, { ok: await pdk.client.verifyPassword(id, pw) });
}`);

describe('auth lookups: password checks on the host', () => {
  let lab: LookupLab;
  const check = async (id: string, pw: string) => {
    const t0 = performance.now();
    const r = await send(`${lab.gw.url}/evil`, { headers: { 'x-id': id, 'x-pw': pw } });
    expect(r.status).toBe(200);
    return { ok: r.json().ok as boolean, ms: performance.now() - t0 };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  beforeAll(async () => {
    lab = await startLookupLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('only the exact password verifies', async () => {
    expect((await check('b-mallory', 'evil-pasS')).ok).toBe(false); // same length
    expect((await check('b-mallory', 'evil-pas')).ok).toBe(false); // prefix
    expect((await check('b-mallory', 'evil-pass!')).ok).toBe(false); // longer
    expect((await check('b-mallory', '')).ok).toBe(false);
    expect((await check('b-mallory', 'evil-pass')).ok).toBe(true);
    expect((await check('k-mallory', 'mallory-key')).ok).toBe(false); // a credential of another kind
  });

  it('an unknown credential id costs a scrypt like a known one (no id oracle)', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push((await check('b-mallory', `wrong-${i}`)).ms);
      unknown.push((await check(`no-such-${i}`, `wrong-${i}`)).ms);
    }
    // both pay scrypt at N=16384 (tens of ms); a lookup miss without it would be ~1 ms
    expect(median(unknown)).toBeGreaterThan(median(known) * 0.3);
  });
});
