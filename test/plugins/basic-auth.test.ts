import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../core/consumers/passwords.ts';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const basic = (user: string, pass: string) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
const CHEAP = { N: 1024, r: 8, p: 1 };

describe('plugin basic-auth', () => {
  let up: Upstream;
  let gw: TestGateway;
  const get = (path: string, headers: Record<string, string> = {}) => send(`${gw.url}${path}`, { headers });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: plain, service: echo, paths: [/plain] }
      - { name: hide, service: echo, paths: [/hide] }
      - { name: anon, service: echo, paths: [/anon] }
      - { name: realm, service: echo, paths: [/realm] }
    consumers:
      - id: c-alice
        username: alice
        credentials: { basic-auth: [{ id: b-alice, username: alice, password_hash: "${hashPassword('s3cret: with colon ü', CHEAP)}" }] }
      - id: c-bob
        username: bob
        customId: bob-1
        credentials: { basic-auth: [{ id: b-bob, username: "bøb", password_hash: "${hashPassword('pw', CHEAP)}" }] }
      - { id: c-guest, username: guest }
    plugins:
      - { name: basic-auth, route: plain }
      - { name: basic-auth, route: hide, config: { hide_credentials: true } }
      - { name: basic-auth, route: anon, config: { anonymous: guest } }
      - { name: basic-auth, route: realm, config: { realm: kong } }
`);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('no header: 401 Unauthorized with WWW-Authenticate: Basic realm="service"', async () => {
    const r = await get('/plain');
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'Unauthorized' });
    expect(r.headers['www-authenticate']).toBe('Basic realm="service"');
    expect((await get('/realm')).headers['www-authenticate']).toBe('Basic realm="kong"');
  });

  it('the right password passes (a colon in it is kept), with Kong\'s upstream headers', async () => {
    const r = await get('/plain', { authorization: basic('alice', 's3cret: with colon ü') });
    expect(r.status).toBe(200);
    const h = r.json().headers;
    expect(h['x-consumer-id']).toBe('c-alice');
    expect(h['x-consumer-username']).toBe('alice');
    expect(h['x-credential-identifier']).toBe('alice');
    expect(h['x-consumer-custom-id']).toBeUndefined();
    expect(h.authorization).toBeDefined();
    const bob = await get('/plain', { authorization: basic('bøb', 'pw') });
    expect(bob.json().headers['x-consumer-custom-id']).toBe('bob-1');
  });

  it('a wrong password, an unknown user, a malformed header: 401 Unauthorized', async () => {
    for (const authorization of [basic('alice', 'wrong'), basic('mallory', 'x'), 'Basic !!!notbase64', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Bearer abc', basic('', 'pw')]) {
      const r = await get('/plain', { authorization });
      expect(r.status, authorization).toBe(401);
      expect(r.json()).toEqual({ message: 'Unauthorized' });
      expect(r.headers['www-authenticate']).toBe('Basic realm="service"');
    }
  });

  it('Proxy-Authorization is tried first, then Authorization', async () => {
    expect((await get('/plain', { 'proxy-authorization': basic('alice', 's3cret: with colon ü') })).status).toBe(200);
    expect((await get('/plain', { 'proxy-authorization': basic('nobody', 'x'), authorization: basic('bøb', 'pw') })).json().headers['x-consumer-id']).toBe('c-bob');
  });

  it('hide_credentials removes the header upstream', async () => {
    const r = await get('/hide', { authorization: basic('alice', 's3cret: with colon ü') });
    expect(r.status).toBe(200);
    expect(r.json().headers.authorization).toBeUndefined();
  });

  it('anonymous: failures go on as the guest consumer', async () => {
    const r = await get('/anon', { authorization: basic('alice', 'wrong') });
    expect(r.status).toBe(200);
    expect(r.json().headers['x-consumer-id']).toBe('c-guest');
    expect(r.json().headers['x-anonymous-consumer']).toBe('true');
    expect((await get('/anon')).json().headers['x-consumer-username']).toBe('guest');
  });

  it('hostile: a 14 KB header, invalid UTF-8 and a password of 2000 characters are refused, not crashed on', async () => {
    expect((await get('/plain', { authorization: 'Basic ' + 'QUFB'.repeat(3500) })).status).toBe(401);
    expect((await get('/plain', { authorization: 'Basic ' + Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64') })).status).toBe(401);
    expect((await get('/plain', { authorization: basic('alice', 'p'.repeat(2000)) })).status).toBe(401);
    expect((await get('/plain', { authorization: basic('alice', 's3cret: with colon ü') })).status).toBe(200);
  });
});
