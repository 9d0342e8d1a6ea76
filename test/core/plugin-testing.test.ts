import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testPlugin } from '../../core/plugin/testing.ts';
import { pluginSource } from '../helpers/gateway.ts';

/**
 * isogate/testing runs a plugin as production does: the real sandbox and its limits, so a
 * plugin that breaks a limit or a phase rule fails in its test exactly as it would serve.
 */
const dir = mkdtempSync(join(tmpdir(), 'isogate-testing-'));
function plugin(file: string, handlers: string): string {
  writeFileSync(join(dir, file), pluginSource(file.replace(/\.ts$/, ''), handlers));
  return join(dir, file);
}

describe('testPlugin', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a single-module plugin and reports what the client and the upstream got', async () => {
    const p = plugin('echo-method.ts', "export function access(pdk: any) { pdk.serviceRequest.setHeader('x-method', pdk.request.getMethod()); pdk.serviceRequest.setPath('/v2'); }");
    const r = await testPlugin({ plugin: p, request: { method: 'PUT', path: '/v1?q=1', body: 'hi' }, upstream: { status: 202, headers: { 'x-up': 'yes' }, body: 'done' } });
    expect(r.client.status).toBe(202);
    expect(r.client.headers['x-up']).toBe('yes');
    expect(r.client.body).toBe('done');
    expect(r.upstream).toMatchObject({ method: 'PUT', path: '/v2?q=1', body: 'hi' });
    expect(r.upstream?.headers['x-method']).toBe('PUT');
  });

  it('enforces the real CPU limit: a plugin over cpuMs fails the request and never reaches the upstream', async () => {
    const p = plugin('spin.ts', 'export function access() { for (;;) {} }');
    const r = await testPlugin({ plugin: p, limits: { cpuMs: 20 } });
    expect(r.client.status).toBe(500);
    expect(r.client.json<{ error: { code: string } }>().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(r.logs).toContainEqual(expect.objectContaining({ level: 'warn', phase: 'access', reason: 'cpu' }));
    expect(r.upstream).toBeNull();
  });

  it("enforces the phases' rules: exit() in headerFilter fails as in production", async () => {
    const p = plugin('late-exit.ts', 'export function headerFilter(pdk: any) { pdk.response.exit(403); }');
    const r = await testPlugin({ plugin: p });
    expect(r.client.status).toBe(500);
    expect(r.upstream).not.toBeNull();
    expect(r.logs).toContainEqual(expect.objectContaining({ level: 'warn', phase: 'headerFilter', plugin: 'late-exit' }));
  });

  it('refuses a config its schema refuses, with the field named', async () => {
    await expect(testPlugin({ plugin: join(import.meta.dirname, '..', '..', 'plugins', 'correlation-id'), config: { generator: 'uuid7' } })).rejects.toThrow(/plugins\[0\]\.config\.generator: must be one of/);
  });
});
