import { createHash, createHmac, generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Calls pdk.crypto.<x-fn>(...JSON args of x-args) and answers with the result, or the error message. */
const CRYPTO = pluginSource(
  'crypto',
  `
export async function access(pdk: any) {
  const fn = pdk.request.getHeader('x-fn');
  const body = JSON.parse(pdk.request.getHeader('x-args'));
  try {
    pdk.response.exit(200, { out: await pdk.crypto[fn](...body) });
  } catch (e: any) {
    pdk.response.exit(200, { error: e.message });
  }
}`,
);

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** A compact JWS signed with node:crypto, the way a token issuer would. */
function jws(alg: string, key: KeyObject | string): { data: string; sig: string } {
  const data = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify({ sub: 'alice' }))}`;
  const hash = alg === 'EdDSA' ? null : `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (alg.startsWith('HS')) sig = createHmac(hash!, key as string).update(data).digest();
  else if (alg.startsWith('PS')) sig = sign(hash, Buffer.from(data), { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  else if (alg.startsWith('ES')) sig = sign(hash, Buffer.from(data), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = sign(hash, Buffer.from(data), key as KeyObject);
  return { data, sig: b64u(sig) };
}

describe('pdk.crypto', () => {
  let up: Upstream;
  let gw: TestGateway;
  const call = async (fn: string, ...args: unknown[]) => (await send(`${gw.url}/c`, { headers: { 'x-fn': fn, 'x-args': JSON.stringify(args) } })).json();

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/c] }]
    plugins: [{ name: crypto, path: ./crypto.ts }]
`,
      { 'crypto.ts': CRYPTO },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('digests and HMACs as node:crypto does', async () => {
    for (const alg of ['sha1', 'sha256', 'sha384', 'sha512']) {
      expect((await call('digest', alg, 'héllo')).out).toBe(createHash(alg).update('héllo').digest('hex'));
      expect((await call('hmac', alg, 'key', 'data', 'base64url')).out).toBe(createHmac(alg, 'key').update('data').digest('base64url'));
    }
    expect((await call('digest', 'md5', 'x')).error).toMatch(/algorithm must be one of/);
  });

  it('random bytes within the cap, timing-safe compare, base64', async () => {
    expect((await call('randomBytes', 16)).out).toMatch(/^[0-9a-f]{32}$/);
    expect((await call('randomBytes', 5000)).error).toBe('crypto.randomBytes: size must be an integer from 1 to 1024');
    expect((await call('timingSafeEqual', 'abc', 'abc')).out).toBe(true);
    expect((await call('timingSafeEqual', 'abc', 'abd')).out).toBe(false);
    expect((await call('timingSafeEqual', 'abc', 'abcd')).out).toBe(false);
    expect((await call('base64Encode', 'hé?>', true)).out).toBe(b64u('hé?>'));
    expect((await call('base64Decode', b64u('hé?>'))).out).toBe('hé?>');
  });

  it('verifies JWS signatures of every family, with PEM and JWK keys', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const families: [string, KeyObject | string, unknown][] = [['HS256', 'secret', 'secret'], ['HS384', 'secret', { kty: 'oct', k: b64u('secret') }], ['HS512', 'secret', 'secret']];
    for (const bits of ['256', '384', '512']) {
      families.push([`RS${bits}`, rsa.privateKey, rsa.publicKey.export({ type: 'spki', format: 'pem' })]);
      families.push([`PS${bits}`, rsa.privateKey, rsa.publicKey.export({ format: 'jwk' })]);
    }
    for (const [alg, curve] of [['ES256', 'prime256v1'], ['ES384', 'secp384r1'], ['ES512', 'secp521r1']]) {
      const ec = generateKeyPairSync('ec', { namedCurve: curve });
      families.push([alg, ec.privateKey, ec.publicKey.export({ format: 'jwk' })]);
    }
    const ed = generateKeyPairSync('ed25519');
    families.push(['EdDSA', ed.privateKey, ed.publicKey.export({ type: 'spki', format: 'pem' })]);
    for (const [alg, signKey, verifyKey] of families) {
      const { data, sig } = jws(alg, signKey);
      expect((await call('verify', alg, verifyKey, data, sig)).out, alg).toBe(true);
      expect((await call('verify', alg, verifyKey, data + 'x', sig)).out, alg).toBe(false);
    }
    // a key of the wrong family is an error, not a false
    const { data, sig } = jws('RS256', rsa.privateKey);
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect((await call('verify', 'RS256', ec.publicKey.export({ format: 'jwk' }), data, sig)).error).toBe('verify: a ec key does not fit RS256');
    expect((await call('verify', 'none', 'x', data, sig)).error).toMatch(/unknown algorithm/);
  });
});
