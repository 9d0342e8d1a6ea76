import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * Authenticates what the request asks for (x-auth: JSON [consumer, credential]), in access
 * or rewrite (x-auth-phase), and sets Kong's upstream consumer headers as Kong's auth
 * plugins do; x-auth-late tries authenticate in headerFilter and reports the error.
 */
const AUTH = pluginSource('auth', `
function go(pdk: any, phase: string) {
  const raw = pdk.request.getHeader('x-auth');
  if (raw === undefined || (pdk.request.getHeader('x-auth-phase') ?? 'access') !== phase) return;
  pdk.serviceRequest.setHeader('x-before', JSON.stringify(pdk.client.getConsumer()));
  const [consumer, credential] = JSON.parse(raw);
  try {
    pdk.client.authenticate(consumer, credential);
  } catch (e: any) {
    pdk.serviceRequest.setHeader('x-auth-error', e.constructor.name + ': ' + e.message);
    return;
  }
  const c = pdk.client.getConsumer();
  if (c !== null) {
    pdk.serviceRequest.setHeader('x-consumer-id', c.id);
    if (c.username !== undefined) pdk.serviceRequest.setHeader('x-consumer-username', c.username);
    if (c.customId != null) pdk.serviceRequest.setHeader('x-consumer-custom-id', c.customId);
  }
  const cr = pdk.client.getCredential();
  if (cr !== null) pdk.serviceRequest.setHeader('x-credential-identifier', cr.id);
  else pdk.serviceRequest.setHeader('x-anonymous-consumer', 'true');
}
export function rewrite(pdk: any) { go(pdk, 'rewrite'); }
export function access(pdk: any) { go(pdk, 'access'); }
export function headerFilter(pdk: any) {
  if (pdk.request.getHeader('x-auth-late') === undefined) return;
  try { pdk.client.authenticate({ id: 'c-alice' }, null); pdk.response.setHeader('x-late', 'allowed'); }
  catch (e: any) { pdk.response.setHeader('x-late', e.message); }
}`, 1000);

/** Runs after auth: reports what it sees in access (same call), headerFilter and log (later calls). */
const READER = pluginSource('reader', `
const seen = (pdk: any) => JSON.stringify({ c: pdk.client.getConsumer(), cr: pdk.client.getCredential() });
export function access(pdk: any) { pdk.serviceRequest.setHeader('x-seen-access', seen(pdk)); }
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-seen-hf', seen(pdk));
  const c = pdk.client.getConsumer();
  if (c !== null) { try { (c as any).id = 'changed'; } catch {} pdk.response.setHeader('x-frozen', String(c.id)); }
}
export function log(pdk: any) { pdk.log.info('seen at log ' + seen(pdk)); }`, 500);

const ALICE = { id: 'c-alice', username: 'alice', customId: 'u-1', tags: ['gold'] };

describe('pdk.client: authenticate, getConsumer, getCredential', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const captured = captureLogger('debug');
    lines = captured.lines;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s }]
    consumers:
      - id: c-alice
        username: alice
        customId: u-1
        tags: [gold]
        credentials:
          key-auth: [{ id: k-alice, key: very-secret-key }]
          basic-auth: [{ id: b-alice, username: alice, password_hash: "scrypt$16$1$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }]
      - { id: c-bob, username: bob }
    plugins:
      - { name: auth, path: ./auth.ts }
      - { name: reader, path: ./reader.ts }
`, { 'auth.ts': AUTH, 'reader.ts': READER }, { logger: captured.logger });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const call = (auth: unknown, headers: Record<string, string> = {}) =>
    send(gw.url + '/', { headers: auth === undefined ? headers : { 'x-auth': JSON.stringify(auth), ...headers } });

  it('without authentication every phase sees null', async () => {
    const r = await call(undefined, { 'x-id': 'none' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.json().headers['x-seen-access'])).toEqual({ c: null, cr: null });
    expect(JSON.parse(r.headers['x-seen-hf'] as string)).toEqual({ c: null, cr: null });
  });

  it('a consumer with its credential: later plugins of the phase and later phases see them, without secrets', async () => {
    const r = await call([ALICE, { id: 'k-alice', kind: 'key-auth' }]);
    expect(r.status).toBe(200);
    const up = r.json().headers;
    expect(up['x-before']).toBe('null');
    expect(JSON.parse(up['x-seen-access'])).toEqual({ c: ALICE, cr: { id: 'k-alice', kind: 'key-auth', consumer: { id: 'c-alice' } } });
    expect(JSON.parse(r.headers['x-seen-hf'] as string)).toEqual({ c: ALICE, cr: { id: 'k-alice', kind: 'key-auth', consumer: { id: 'c-alice' } } });
    expect(r.headers['x-seen-hf']).not.toContain('very-secret-key');
    // Kong's upstream headers, set by the plugin
    expect(up).toMatchObject({ 'x-consumer-id': 'c-alice', 'x-consumer-username': 'alice', 'x-consumer-custom-id': 'u-1', 'x-credential-identifier': 'k-alice' });
    expect(r.headers['x-frozen']).toBe('c-alice');
    const line = await waitFor(() => lines.find((l) => l.msg.startsWith('seen at log') && l.msg.includes('k-alice')));
    expect(JSON.parse(line.msg.slice('seen at log '.length)).c).toEqual(ALICE);
  });

  it('a consumer passed by id alone: the same call sees the id, later phases the whole record', async () => {
    const r = await call([{ id: 'c-alice' }, null]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.json().headers['x-seen-access'])).toEqual({ c: { id: 'c-alice' }, cr: null });
    expect(JSON.parse(r.headers['x-seen-hf'] as string)).toEqual({ c: ALICE, cr: null });
    expect(r.json().headers['x-anonymous-consumer']).toBe('true');
  });

  it('authenticated in rewrite: access sees the host record', async () => {
    const r = await call([{ id: 'c-bob' }, null], { 'x-auth-phase': 'rewrite' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.json().headers['x-seen-access']).c).toEqual({ id: 'c-bob', username: 'bob', customId: null, tags: [] });
  });

  it('a credential without a consumer (an outside identity): no consumer, the credential as given', async () => {
    const r = await call([null, { id: 'ext-42', kind: 'oauth2' }]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.headers['x-seen-hf'] as string)).toEqual({ c: null, cr: { id: 'ext-42', kind: 'oauth2', consumer: null } });
  });

  it('refuses neither consumer nor credential, and objects of the wrong shape, with errors of the plugin\'s realm', async () => {
    expect((await call([null, null])).json().headers['x-auth-error']).toBe('Error: either credential or consumer must be provided');
    expect((await call(['c-alice', null])).json().headers['x-auth-error']).toBe('TypeError: consumer must be an object or null, got string');
    expect((await call([{ id: 7 }, null])).json().headers['x-auth-error']).toBe('TypeError: consumer.id must be a string, got number');
    expect((await call([{ id: 'c-alice', tags: 'gold' }, null])).json().headers['x-auth-error']).toBe('TypeError: consumer.tags must be an array of strings');
  });

  it('the host checks what was passed against the consumer index: a mismatch fails the request', async () => {
    for (const bad of [
      [{ id: 'c-alice', username: 'mallory' }, null],
      [{ id: 'c-alice', tags: ['platinum'] }, null],
      [{ id: 'c-bob' }, { id: 'k-alice' }], // alice's credential for bob
      [{ id: 'c-alice' }, { id: 'k-alice', kind: 'basic-auth' }],
      [{ id: 'c-nobody' }, null],
    ]) {
      const r = await call(bad);
      expect(r.status, JSON.stringify(bad)).toBe(500);
      expect(r.headers['x-isogate-error-id']).toBeTruthy();
    }
    await waitFor(() => lines.find((l) => /unknown consumer id/.test(String(l.msg))), 3000, 'the bad_return logged');
  });

  it('authenticate is refused outside rewrite and access, naming the phases', async () => {
    const r = await call(undefined, { 'x-auth-late': '1' });
    expect(r.status).toBe(200);
    expect(r.headers['x-late']).toBe('client.authenticate is not allowed in phase headerFilter (allowed in: rewrite, access)');
  });
});
