import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign, constants, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ec384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
const ed = generateKeyPairSync('ed25519');
const B64_SECRET = randomBytes(32).toString('base64');

/** A compact JWS of `claims`, `alg` in its header (plus `header`), signed as the algorithm says. */
function jwt(alg: string, key: string | Buffer | KeyObject, claims: object, header: object = {}): string {
  const input = `${b64url(JSON.stringify({ typ: 'JWT', alg, ...header }))}.${b64url(JSON.stringify(claims))}`;
  const hash = `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (alg.startsWith('HS')) sig = createHmac(hash, key as string | Buffer).update(input).digest();
  else if (alg.startsWith('RS')) sig = cryptoSign(hash, Buffer.from(input), key as KeyObject);
  else if (alg.startsWith('PS')) sig = cryptoSign(hash, Buffer.from(input), { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  else if (alg.startsWith('ES')) sig = cryptoSign(hash, Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign(null, Buffer.from(input), key as KeyObject);
  return `${input}.${b64url(sig)}`;
}

/** Calls the host's signature check directly, as a hostile plugin would (x-args: JSON arguments). */
const RAW = pluginSource('raw', `
export async function access(pdk: any) {
  const [id, alg, input, sig] = JSON.parse(pdk.request.getHeader('x-args'));
  pdk.response.exit(200, { ok: await pdk.client.verifyCredentialSignature(id, alg, input, sig) });
}`);

describe('plugin jwt', () => {
  let up: Upstream;
  let gw: TestGateway;
  const now = () => Math.floor(Date.now() / 1000);
  const bearer = (path: string, token: string, extra: Record<string, string> = {}) => send(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...extra } });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const route = (n: string) => `      - { name: ${n}, service: echo, paths: [/${n}] }`;
    const cred = (id: string, alg: string, key: string) => `{ id: ${id}, key: ${id}-iss, algorithm: ${alg}, ${alg.startsWith('HS') ? 'secret' : 'rsa_public_key'}: ${JSON.stringify(key)} }`;
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
${['plain', 'claims', 'leeway', 'maxexp', 'b64', 'cookie', 'kid', 'anon', 'raw'].map(route).join('\n')}
    consumers:
      - id: c-alice
        username: alice
        customId: u-1
        credentials:
          jwt:
            - ${cred('hs', 'HS256', 'hs-secret')}
            - ${cred('hs512', 'HS512', 'hs512-secret')}
            - ${cred('b64', 'HS256', B64_SECRET)}
            - ${cred('rs', 'RS256', pem(rsa.publicKey))}
            - ${cred('rs512', 'RS512', pem(rsa.publicKey))}
            - ${cred('ps', 'PS256', pem(rsa.publicKey))}
            - ${cred('es', 'ES256', pem(ec256.publicKey))}
            - ${cred('es384', 'ES384', pem(ec384.publicKey))}
            - ${cred('ed', 'EdDSA', pem(ed.publicKey))}
      - { id: c-guest, username: guest }
    plugins:
      - { name: jwt, route: plain }
      - { name: jwt, route: claims, config: { claims_to_verify: [exp, nbf] } }
      - { name: jwt, route: leeway, config: { claims_to_verify: [exp, nbf], leeway: 30 } }
      - { name: jwt, route: maxexp, config: { claims_to_verify: [exp], maximum_expiration: 60 } }
      - { name: jwt, route: b64, config: { secret_is_base64: true } }
      - { name: jwt, route: cookie, config: { cookie_names: [tok], uri_param_names: [] } }
      - { name: jwt, route: kid, config: { key_claim_name: kid, realm: api } }
      - { name: jwt, route: anon, config: { anonymous: c-guest } }
      - { name: raw, path: ./raw.ts, route: raw }
`, { 'raw.ts': RAW });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('no token: 401 Unauthorized with WWW-Authenticate: Bearer', async () => {
    const r = await send(`${gw.url}/plain`);
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'Unauthorized' });
    expect(r.headers['www-authenticate']).toBe('Bearer');
    expect((await send(`${gw.url}/plain`, { headers: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it('HS256 in the Authorization header or the jwt query argument: Kong\'s upstream headers', async () => {
    const token = jwt('HS256', 'hs-secret', { iss: 'hs-iss', sub: 'x' });
    const r = await bearer('/plain', token);
    expect(r.status).toBe(200);
    const h = r.json().headers;
    expect(h['x-consumer-id']).toBe('c-alice');
    expect(h['x-consumer-username']).toBe('alice');
    expect(h['x-consumer-custom-id']).toBe('u-1');
    expect(h['x-credential-identifier']).toBe('hs-iss');
    expect((await send(`${gw.url}/plain?jwt=${token}`)).status).toBe(200);
  });

  it('every algorithm verifies on the host: HS512, RS256, RS512, PS256, ES256, ES384, EdDSA', async () => {
    const cases: [string, string, string | KeyObject][] = [
      ['HS512', 'hs512', 'hs512-secret'], ['RS256', 'rs', rsa.privateKey], ['RS512', 'rs512', rsa.privateKey], ['PS256', 'ps', rsa.privateKey],
      ['ES256', 'es', ec256.privateKey], ['ES384', 'es384', ec384.privateKey], ['EdDSA', 'ed', ed.privateKey],
    ];
    for (const [alg, id, key] of cases) {
      const r = await bearer('/plain', jwt(alg, key, { iss: `${id}-iss` }));
      expect(r.status, alg).toBe(200);
      expect(r.json().headers['x-credential-identifier']).toBe(`${id}-iss`);
    }
  });

  it("Kong's messages for bad tokens, all 401", async () => {
    const good = jwt('HS256', 'hs-secret', { iss: 'hs-iss' });
    const cases: [string, string][] = [
      [good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA'), 'Invalid signature'],
      [jwt('HS256', 'other-secret', { iss: 'hs-iss' }), 'Invalid signature'],
      [jwt('HS512', 'hs-secret', { iss: 'hs-iss' }), 'Invalid algorithm'],
      ['abc.def', 'Bad token; invalid JWT'],
      [`${b64url('{not json')}.${b64url('{}')}.sig`, 'Bad token; invalid JSON'],
      [`${b64url('[1]')}.${b64url('{}')}.sig`, 'Bad token; invalid JSON'],
      [`${b64url('{"alg":"HS256","typ":"JWS"}')}.${b64url('{}')}.sig`, 'Bad token; invalid typ'],
      [jwt('HS256', 'hs-secret', { sub: 'no iss' }), "No mandatory 'iss' in claims"],
      [jwt('HS256', 'hs-secret', { iss: 'nobody' }), "No credentials found for given 'iss'"],
      [jwt('HS256', 'hs-secret', { iss: 42 }), "No credentials found for given 'iss'"],
    ];
    for (const [token, message] of cases) {
      const r = await bearer('/plain', token);
      expect(r.status, message).toBe(401);
      expect(r.json(), token.slice(0, 40)).toEqual({ message });
      expect(r.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    }
    const two = await send(`${gw.url}/plain?jwt=a.b.c&jwt=d.e.f`);
    expect(two.json()).toEqual({ message: 'Multiple tokens provided' });
  });

  it('hostile: alg none, and an HS256 token keyed with the RS credential\'s public key (the confusion attack), fail', async () => {
    const none = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: 'rs-iss' }))}.`;
    expect((await bearer('/plain', none)).json()).toEqual({ message: 'Bad token; invalid JWT' });
    const noneSig = none + 'x';
    expect((await bearer('/plain', noneSig)).json()).toEqual({ message: 'Bad token; invalid alg' });
    const confused = jwt('HS256', pem(rsa.publicKey), { iss: 'rs-iss' });
    const r = await bearer('/plain', confused);
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'Invalid algorithm' });
    // a plugin asking the host directly gets false too: the host uses the credential's own algorithm only
    const [h, p, s] = confused.split('.');
    const raw = await send(`${gw.url}/raw`, { headers: { 'x-args': JSON.stringify(['rs', 'HS256', `${h}.${p}`, s]) } });
    expect(raw.json()).toEqual({ ok: false });
    const real = jwt('RS256', rsa.privateKey, { iss: 'rs-iss' }).split('.');
    const rawOk = await send(`${gw.url}/raw`, { headers: { 'x-args': JSON.stringify(['rs', 'RS256', `${real[0]}.${real[1]}`, real[2]]) } });
    expect(rawOk.json()).toEqual({ ok: true });
  });

  it('claims_to_verify: exp and nbf, with Kong\'s error bodies', async () => {
    const t = (claims: object) => bearer('/claims', jwt('HS256', 'hs-secret', { iss: 'hs-iss', ...claims }));
    expect((await t({ exp: now() + 60, nbf: now() - 1 })).status).toBe(200);
    const expired = await t({ exp: now() - 1, nbf: now() - 10 });
    expect(expired.status).toBe(401);
    expect(expired.json()).toEqual({ exp: 'token expired' });
    expect((await t({ exp: now() + 60, nbf: now() + 60 })).json()).toEqual({ nbf: 'token not valid yet' });
    expect((await t({})).json()).toEqual({ exp: 'must be a number', nbf: 'must be a number' });
    expect((await t({ exp: String(now() + 60), nbf: now() })).json()).toEqual({ exp: 'must be a number' });
    // the plain route does not verify them
    expect((await bearer('/plain', jwt('HS256', 'hs-secret', { iss: 'hs-iss', exp: 1 }))).status).toBe(200);
  });

  it('leeway: clock skew allowed both ways on exp and nbf', async () => {
    const t = (claims: object) => bearer('/leeway', jwt('HS256', 'hs-secret', { iss: 'hs-iss', ...claims }));
    expect((await t({ exp: now() - 10, nbf: now() + 10 })).status).toBe(200);
    expect((await t({ exp: now() - 60, nbf: now() })).json()).toEqual({ exp: 'token expired' });
    expect((await t({ exp: now() + 60, nbf: now() + 60 })).json()).toEqual({ nbf: 'token not valid yet' });
  });

  it('maximum_expiration refuses a token that lives too long', async () => {
    const t = (exp: number) => bearer('/maxexp', jwt('HS256', 'hs-secret', { iss: 'hs-iss', exp }));
    expect((await t(now() + 30)).status).toBe(200);
    const long = await t(now() + 3600);
    expect(long.status).toBe(401);
    expect(long.json()).toEqual({ exp: 'exceeds maximum allowed expiration' });
  });

  it('secret_is_base64: the secret is decoded on the host', async () => {
    const raw = Buffer.from(B64_SECRET, 'base64');
    expect((await bearer('/b64', jwt('HS256', raw, { iss: 'b64-iss' }))).status).toBe(200);
    expect((await bearer('/b64', jwt('HS256', B64_SECRET, { iss: 'b64-iss' }))).json()).toEqual({ message: 'Invalid signature' });
    expect((await bearer('/plain', jwt('HS256', B64_SECRET, { iss: 'b64-iss' }))).status).toBe(200);
  });

  it('cookie_names, and key_claim_name read from the token header (kid) with a realm', async () => {
    const token = jwt('HS256', 'hs-secret', { iss: 'hs-iss' });
    expect((await send(`${gw.url}/cookie`, { headers: { cookie: `a=1; tok=${token}; b=2` } })).status).toBe(200);
    expect((await send(`${gw.url}/cookie?jwt=${token}`)).status).toBe(401);
    const kid = jwt('HS256', 'hs-secret', { sub: 'x' }, { kid: 'hs-iss' });
    expect((await bearer('/kid', kid)).status).toBe(200);
    const none = await send(`${gw.url}/kid`);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="api"');
    expect((await bearer('/kid', 'a.b')).headers['www-authenticate']).toBe('Bearer realm="api", error="invalid_token"');
  });

  it('anonymous: a bad token goes on as the guest', async () => {
    const r = await bearer('/anon', 'garbage');
    expect(r.status).toBe(200);
    expect(r.json().headers['x-consumer-id']).toBe('c-guest');
    expect(r.json().headers['x-anonymous-consumer']).toBe('true');
  });

  it('hostile: a 20 KB header is refused before any plugin, a 15 KB token is a bad token, unicode claims are fine', async () => {
    expect((await bearer('/plain', 'x'.repeat(20 * 1024))).status).toBe(431);
    const big = await bearer('/plain', `${b64url('{"alg":"HS256"}')}.${'A'.repeat(15000)}.sig`);
    expect(big.status).toBe(401);
    expect(big.json()).toEqual({ message: 'Bad token; invalid JSON' });
    expect((await bearer('/plain', jwt('HS256', 'hs-secret', { iss: 'hs-iss', name: 'Zoë 🔑 \u202e' }))).status).toBe(200);
    expect((await bearer('/plain', jwt('HS256', 'hs-secret', { iss: 'hs-iss' }))).status).toBe(200);
  });
});
