// auth lookups: huge and odd keys. A key over maxCredentialKeyChars, a password over
// maxPasswordChars, a signing input over maxSigningInputChars are refused at the call, in
// the isolate (RangeError, nothing crosses); non-strings are TypeErrors; unicode and NUL in
// a key find nothing and break nothing; a 1 MB key never reaches the host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.ts';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { lookupPlugin, startLookupLab, type LookupLab } from './auth-lookup-helpers.ts';

const EVIL = lookupPlugin(`
export async function access(pdk: any) {
  const c = pdk.client;
  const out: Record<string, string> = {};
  const t = async (k: string, f: () => Promise<unknown>) => {
    try { out[k] = 'ok ' + JSON.stringify(await f()); } catch (e: any) { out[k] = e.constructor.name + ': ' + e.message; }
  };
  await t('key', () => c.findCredential('key-auth', 'x'.repeat(${OUTPUT_CAPS.maxCredentialKeyChars + 1})));
  await t('mega', () => c.findCredential('key-auth', 'x'.repeat(1 << 20)));
  await t('atCap', () => c.findCredential('key-auth', 'x'.repeat(${OUTPUT_CAPS.maxCredentialKeyChars})));
  await t('password', () => c.verifyPassword('b-mallory', 'p'.repeat(${OUTPUT_CAPS.maxPasswordChars + 1})));
  await t('input', () => c.verifyCredentialSignature('j', 'HS256', 'a'.repeat(${OUTPUT_CAPS.maxSigningInputChars + 1}), 'x'));
  await t('id', () => c.loadConsumer('i'.repeat(${OUTPUT_CAPS.maxAuthFieldChars + 1})));
  await t('notString', () => c.findCredential('key-auth', { toString() { return 'mallory-key'; } }));
  await t('kind', () => c.findCredential('acl', 'evil-group'));
  await t('unicode', () => c.findCredential('key-auth', 'mallory-key\\u0000\\u202e\\ud83d\\ude00'));
  await t('lone', () => c.findCredential('key-auth', '\\ud800'));
  pdk.response.exit(200, out);
}`);

describe('auth lookups: huge and odd keys', () => {
  let lab: LookupLab;
  beforeAll(async () => {
    lab = await startLookupLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('over-long arguments are RangeErrors at the call; others find nothing', async () => {
    const r = await send(`${lab.gw.url}/evil`);
    expect(r.status).toBe(200);
    const j = r.json();
    expect(j.key).toMatch(/^RangeError: client\.findCredential: key of 16385 characters exceeds 16384/);
    expect(j.mega).toMatch(/^RangeError: /);
    expect(j.atCap).toBe('ok null');
    expect(j.password).toMatch(/^RangeError: client\.verifyPassword: password/);
    expect(j.input).toMatch(/^RangeError: client\.verifyCredentialSignature: signing input/);
    expect(j.id).toMatch(/^RangeError: /);
    expect(j.notString).toMatch(/^TypeError: /);
    expect(j.kind).toBe('Error: client.findCredential: kind must be key-auth, basic-auth or jwt');
    expect(j.unicode).toBe('ok null');
    expect(j.lone).toBe('ok null');
  });
});
