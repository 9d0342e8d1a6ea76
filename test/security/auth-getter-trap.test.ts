// client.authenticate with objects that fight back: getters that count their reads or
// answer differently each time, a Proxy that records every key asked for, an id that is
// an object with toString, a getter that never returns. Only the runtime, inside the
// isolate and under the plugin's CPU limit, ever reads them; each field is read once, and
// what leaves is plain strings (a coercible object is refused, never coerced on the host).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pluginSource, send } from '../helpers/gateway.ts';
import { startAuthLab, type AuthLab } from './auth-helpers.ts';

const EVIL = pluginSource('evil', `
export function access(pdk: any) {
  const which = pdk.request.getQueryArg('case');
  const asked: string[] = [];
  let reads = 0;
  let consumer: any;
  if (which === 'proxy') {
    consumer = new Proxy({}, { get(_t, k) { asked.push(String(k)); return k === 'id' ? 'c-alice' : undefined; }, getPrototypeOf() { asked.push('getPrototypeOf'); return null; } });
  } else if (which === 'flip') {
    // a first read says alice, any later read says bob: only the first may count
    consumer = { get id() { reads++; return reads === 1 ? 'c-alice' : 'c-bob'; } };
  } else if (which === 'coercible') {
    consumer = { id: { toString() { return 'c-alice'; }, valueOf() { return 'c-alice'; }, toJSON() { return 'c-alice'; } } };
  } else if (which === 'spin') {
    consumer = { get id() { for (;;) {} } };
  } else if (which === 'throws') {
    consumer = { get id() { throw new Error('from the getter'); } };
  }
  try {
    pdk.client.authenticate(consumer, null);
  } catch (e: any) {
    pdk.response.setHeader('x-error', e.message);
  }
  pdk.response.setHeader('x-asked', asked.join(','));
  pdk.response.setHeader('x-reads', String(reads));
  const seen = pdk.client.getConsumer();
  pdk.response.setHeader('x-seen', seen === null ? 'null' : seen.id);
}`, 100);

describe('security: getter traps passed to client.authenticate', () => {
  let lab: AuthLab;
  beforeAll(async () => {
    lab = await startAuthLab(EVIL, 100);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('a Proxy is asked only for the fields authenticate reads, once each', async () => {
    const r = await send(`${lab.gw.url}/evil?case=proxy`);
    expect(r.status).toBe(200);
    expect(r.headers['x-asked']).toBe('id,username,customId,tags');
    expect(r.headers['x-marker-hf']).toBe('alice');
  });

  it('a getter that changes its answer is read once: the consumer is the one it first named, everywhere', async () => {
    const r = await send(`${lab.gw.url}/evil?case=flip`);
    expect(r.status).toBe(200);
    expect(r.headers['x-reads']).toBe('1');
    expect(r.headers['x-seen']).toBe('c-alice');
    expect(r.headers['x-marker']).toBe('alice');
    expect(r.headers['x-marker-hf']).toBe('alice');
  });

  it('an id that is an object with toString/valueOf/toJSON is refused, not coerced', async () => {
    const r = await send(`${lab.gw.url}/evil?case=coercible`);
    expect(r.status).toBe(200);
    expect(r.headers['x-error']).toBe('consumer.id must be a string, got object');
    expect(r.headers['x-seen']).toBe('null');
    expect(r.headers['x-marker-hf']).toBe('anyone');
  });

  it('a getter that throws: the plugin gets its own error', async () => {
    const r = await send(`${lab.gw.url}/evil?case=throws`);
    expect(r.headers['x-error']).toBe('from the getter');
  });

  it('a getter that never returns is stopped by the CPU limit like any plugin code; the neighbour is served', async () => {
    const [r, good] = await Promise.all([send(`${lab.gw.url}/evil?case=spin`), send(`${lab.gw.url}/good`)]);
    expect(r.status).toBe(500);
    expect(good.status).toBe(200);
    const again = await send(`${lab.gw.url}/evil?case=flip`);
    expect(again.status).toBe(200);
  });
});
