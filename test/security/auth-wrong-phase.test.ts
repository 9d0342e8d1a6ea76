// client.authenticate where it has no meaning: after the upstream answered (headerFilter,
// bodyFilter, log). The runtime refuses it naming the phases; an 'auth' operation that
// reached the host in such a phase anyway (a forged result) is refused there too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOps, LOG_ONLY_TARGET } from '../../pdk-bridge/host/ops.ts';
import { PHASE } from '../../pdk-bridge/host/phases.ts';
import { pluginSource, send, waitFor } from '../helpers/gateway.ts';
import { startAuthLab, type AuthLab } from './auth-helpers.ts';

const EVIL = pluginSource('evil', `
function tryAuth(pdk: any): string {
  try { pdk.client.authenticate({ id: 'c-alice' }, null); return 'allowed'; } catch (e: any) { return e.message; }
}
export function headerFilter(pdk: any) { pdk.response.setHeader('x-hf', tryAuth(pdk)); }
// the body, chunk by chunk since the body merge: the whole of it becomes the refusal
export function bodyFilter(pdk: any) { if (pdk.request.getQueryArg('body') === '1') pdk.response.setChunk(pdk.response.isLastChunk() ? tryAuth(pdk) : ''); }
export function log(pdk: any) { pdk.log.warn('log phase: ' + tryAuth(pdk)); }`, 100);

describe('security: client.authenticate in a wrong phase', () => {
  let lab: AuthLab;
  beforeAll(async () => {
    lab = await startAuthLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('is refused in headerFilter, bodyFilter and log, naming the allowed phases; the chain stays the anonymous one', async () => {
    const r = await send(`${lab.gw.url}/evil?body=1`);
    expect(r.status).toBe(200);
    const refusal = (p: string) => `client.authenticate is not allowed in phase ${p} (allowed in: rewrite, access)`;
    expect(r.headers['x-hf']).toBe(refusal('headerFilter'));
    expect(r.body).toBe(refusal('bodyFilter'));
    expect(r.headers['x-marker-hf']).toBe('anyone');
    await waitFor(() => lab.lines.find((l) => l.msg === `log phase: ${refusal('log')}`));
  });

  it('the host refuses an auth operation outside rewrite and access', () => {
    const op = ['auth', 'c-alice', null, null, null, null, null];
    for (const phase of [PHASE.HEADER_FILTER, PHASE.BODY_FILTER, PHASE.LOG]) {
      expect(applyOps([['@', 0], op], phase, { ...LOG_ONLY_TARGET }, () => {})?.detail).toBe('operation auth is not allowed in this phase');
    }
    expect(applyOps([['@', 0], op], PHASE.ACCESS, { ...LOG_ONLY_TARGET }, () => {})?.detail).toBe('auth: unknown consumer id');
  });
});
