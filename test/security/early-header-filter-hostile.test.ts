// A plugin that declares `readsResponse: false` runs its headerFilter inside the access
// crossing, before the upstream answered: reading the response there is refused with an
// error that says why, as the request's fault; a loop there is killed at the plugin's cpuMs
// and answered as a headerFilter fault at header time (after the upstream was called), as
// for a headerFilter that crosses at header time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { echoHandler } from '../helpers/gateway.ts';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export const readsResponse = false;
export function access(pdk) { pdk.serviceRequest.setHeader('x-from-access', '1'); pdk.response.setHeader('x-access', 'a'); }
export function headerFilter(pdk) {
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'status') pdk.response.getStatus();
  if (mode === 'header') pdk.response.getHeader('content-type');
  if (mode === 'headers') pdk.response.getHeaders();
  if (mode === 'source') pdk.response.getSource();
  if (mode === 'svc') pdk.serviceResponse.getHeader('content-type');
  if (mode === 'svcstatus') pdk.serviceResponse.getStatus();
  if (mode === 'svcbody') pdk.serviceResponse.getRawBody();
  if (mode === 'catch') {
    try { pdk.response.getStatus(); } catch (e) { pdk.response.setHeader('x-caught', e.message); pdk.response.setHeader('x-realm', String(e instanceof Error)); }
  }
  if (mode === 'exit') pdk.response.exit(200, 'x');
  if (mode === 'spin') for (;;) {}
  if (mode === 'never') return new Promise(() => {});
  pdk.response.setHeader('x-hf', 'ran');
}
`);

let upstreamHits = 0;
function countingEcho(req: IncomingMessage, res: ServerResponse): void {
  upstreamHits++;
  echoHandler(req, res);
}

describe('early headerFilter (readsResponse: false), hostile', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30, upstream: countingEcho });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('runs early: its header arrives', async () => {
    const r = await send(`${lab.url}/evil`);
    expect(r.status).toBe(200);
    expect(r.headers['x-hf']).toBe('ran');
    expect(r.headers['x-access']).toBe('a');
  });

  for (const [mode, fn] of [['status', 'response.getStatus'], ['header', 'response.getHeader'], ['headers', 'response.getHeaders'], ['source', 'response.getSource'], ['svc', 'serviceResponse.getHeader'], ['svcstatus', 'serviceResponse.getStatus'], ['svcbody', 'serviceResponse.getRawBody']] as const) {
    it(`${fn} fails the request (500 with an error id), with an error that names readsResponse: false, ${fn} and the plugin`, async () => {
      const before = await failures(lab, 'threw', { plugin: 'evil' });
      const logsBefore = faultLogs(lab).length;
      const r = await attack(lab, '/evil', { headers: { 'x-mode': mode } });
      const id = expectPluginFailed(r);
      expect(r.headers['x-hf']).toBeUndefined();
      expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(before + 1);
      const line = faultLogs(lab).slice(logsBefore).find((l) => l.errorId === id)!;
      expect(line.phase).toBe('headerFilter');
      expect(line.msg).toContain(fn);
      expect(line.msg).toContain('readsResponse: false');
      expect(line.msg).toContain('plugin evil');
    });
  }

  it('the error is of the plugin\u2019s realm and may be caught', async () => {
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'catch' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-caught']).toMatch(/^response\.getStatus reads the response, and plugin evil declares readsResponse: false/);
    expect(r.headers['x-realm']).toBe('true');
    expect(r.headers['x-hf']).toBe('ran');
  });

  it('what headerFilter may not do is refused as in headerFilter', async () => {
    const logsBefore = faultLogs(lab).length;
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'exit' } });
    const id = expectPluginFailed(r);
    const line = faultLogs(lab).slice(logsBefore).find((l) => l.errorId === id)!;
    expect(line.msg).toContain('response.exit is not allowed in phase headerFilter');
  });

  it('a loop in the early headerFilter is killed at its cpuMs and answered at header time: 500, outcome cpu, counted once', async () => {
    const hits = upstreamHits;
    const before = await failures(lab, 'cpu', { plugin: 'evil' });
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'spin' } });
    expectPluginFailed(r);
    expect(r.body).not.toContain('x-from-access');
    expect(r.ms).toBeLessThan(1500);
    // as a headerFilter crossing's: the upstream was called, the fault came with its headers
    expect(upstreamHits - hits).toBe(1);
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(before + 1);
    await expectStillServes(lab);
    const again = await send(`${lab.url}/evil`);
    expect(again.headers['x-hf']).toBe('ran');
  });
});

describe('early headerFilter (readsResponse: false), hostile: a promise that never settles', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30, upstream: countingEcho });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('is the headerFilter’s wall fault, answered at header time (after the upstream), as without readsResponse: false', async () => {
    const hits = upstreamHits;
    const before = await failures(lab, 'wall', { plugin: 'evil' });
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'never' } });
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(r.body).not.toContain('x-from-access');
    expect(upstreamHits - hits).toBe(1);
    expect(await failures(lab, 'wall', { plugin: 'evil' })).toBe(before + 1);
    await expectStillServes(lab);
  });
});

describe('early headerFilter (readsResponse: false), hostile, fail-open', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30, failOpen: true });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('a loop in a fail-open early headerFilter: killed, skipped, the request served with what access did', async () => {
    const before = await failures(lab, 'cpu', { plugin: 'evil' });
    const r = await attack(lab, '/evil', { headers: { 'x-mode': 'spin' } });
    expect(r.status).toBe(200);
    expect(r.body).toContain('x-from-access'); // access ran again on its own, its operations applied
    expect(r.headers['x-access']).toBe('a');
    expect(r.headers['x-hf']).toBeUndefined();
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(before + 1);
    await expectStillServes(lab);
  });

  it('reading the response in a fail-open early headerFilter: logged and counted, the request served', async () => {
    const before = await failures(lab, 'threw', { plugin: 'evil' });
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'status' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-access']).toBe('a');
    expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(before + 1);
  });
});
