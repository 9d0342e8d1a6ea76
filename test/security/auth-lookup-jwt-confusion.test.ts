// auth lookups: a plugin tries to make the host verify a JWT signature the wrong way.
// The classic confusion: an HS256 signature keyed with an RS credential's public key (which
// is public, so anyone can make one); `none`; an algorithm the credential does not have;
// signatures of the right form for the wrong input. The host verifies with the
// credential's own key under its own algorithm only, and says false; no key ever comes back.
import { createHmac, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.ts';
import { MALLORY_PEM, MALLORY_RSA, lookupPlugin, startLookupLab, type LookupLab } from './auth-lookup-helpers.ts';

const EVIL = lookupPlugin(`
export async function access(pdk: any) {
  const tries = JSON.parse(pdk.request.getHeader('x-tries'));
  const out: unknown[] = [];
  for (const [id, alg, input, sig, opts] of tries) {
    try { out.push(await pdk.client.verifyCredentialSignature(id, alg, input, sig, opts)); } catch (e: any) { out.push(e.constructor.name + ': ' + e.message); }
  }
  const found = await pdk.client.findCredential('jwt', 'mallory-iss');
  pdk.response.exit(200, { out, found });
}`);

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('auth lookups: JWT signature confusion', () => {
  let lab: LookupLab;
  beforeAll(async () => {
    lab = await startLookupLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('only the credential\'s own algorithm and key verify', async () => {
    const input = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64('{"iss":"mallory-iss"}')}`;
    const hsWithPem = createHmac('sha256', MALLORY_PEM).update(input).digest('base64url');
    const rsInput = `${b64('{"alg":"RS256"}')}.${b64('{"iss":"mallory-iss"}')}`;
    const rsSig = sign('sha256', Buffer.from(rsInput), MALLORY_RSA.privateKey).toString('base64url');
    const tries = [
      ['j-mallory-rs', 'HS256', input, hsWithPem], // the confusion attack
      ['j-mallory-rs', 'HS256', input, hsWithPem, { secretIsBase64: true }],
      ['j-mallory-rs', 'none', rsInput, ''],
      ['j-mallory-rs', 'RS512', rsInput, rsSig],
      ['j-mallory-rs', 'RS256', rsInput + 'x', rsSig],
      ['j-mallory-rs', 'RS256', rsInput, rsSig], // the real one
      ['j-mallory-hs', 'HS256', input, createHmac('sha256', 'mallory-hs-secret').update(input).digest('base64url')],
      ['j-mallory-hs', 'RS256', rsInput, rsSig],
      ['k-mallory', 'HS256', input, hsWithPem], // not a jwt credential
    ];
    const r = await send(`${lab.gw.url}/evil`, { headers: { 'x-tries': JSON.stringify(tries) } });
    expect(r.status).toBe(200);
    const { out, found } = r.json();
    expect(out).toEqual([false, false, false, false, false, true, true, false, 'Error: client.verifyCredentialSignature: no jwt credential of that id']);
    // the lookup hands out the algorithm, never the key
    expect(found.credential).toEqual({ id: 'j-mallory-rs', kind: 'jwt', consumer: { id: 'c-mallory' }, algorithm: 'RS256' });
    expect(r.body).not.toContain('BEGIN PUBLIC KEY');
    expect(r.body).not.toContain('mallory-hs-secret');
  });
});
