import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Runs `isogate import` through the real CLI. */
function runImport(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', join(ROOT, 'bin', 'isogate.js'), 'import', ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('isogate import of a Kong declarative config', () => {
  let upstream: Upstream;
  let gateway: TestGateway;
  let stderr: string;
  let converted: any;

  beforeAll(async () => {
    upstream = await startUpstream(echoHandler);
    const dir = mkdtempSync(join(tmpdir(), 'isogate-kong-'));
    const kongFile = join(dir, 'kong.yml');
    writeFileSync(kongFile, readFileSync(join(import.meta.dirname, 'fixtures', 'shop.kong.yml'), 'utf8').replaceAll('${UPSTREAM}', String(upstream.port)));
    const out = join(dir, 'gateway.yaml');
    const r = runImport([kongFile, '--tenant', 'shop', '-o', out]);
    stderr = r.stderr;
    expect(r.status, r.stderr).toBe(0);
    converted = parse(readFileSync(out, 'utf8'));
    gateway = await startGateway(stringify({ workers: 0, ...converted }));
  });
  afterAll(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  it('maps services and routes with Kong defaults (strip_path on, preserve_host off)', async () => {
    const r = await send(`${gateway.url}/orders/42?x=1`, { headers: { host: 'shop.example.com' } });
    expect(r.status).toBe(200);
    const seen = r.json();
    expect(seen.url).toBe('/v1/42?x=1');
    expect(seen.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect((await send(`${gateway.url}/orders/42`, { method: 'DELETE' })).status).toBe(404);
  });

  it('splits a service whose routes disagree on preserve_host', async () => {
    const r = await send(`${gateway.url}/by-host/a`, { headers: { host: 'shop.example.com' } });
    expect(r.json().headers.host).toBe('shop.example.com');
    const names = converted.tenants[0].services.map((s: any) => s.name);
    expect(names).toEqual(expect.arrayContaining(['orders', 'orders-preserve-host']));
    expect(stderr).toMatch(/services\[0\]\(orders\): its routes disagree on preserve_host/);
  });

  it('carries plugin config over field by field', async () => {
    const r = await send(`${gateway.url}/orders/1`);
    expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json().headers['x-request-id']).toBe(r.headers['x-request-id']);
    const m = await send(`${gateway.url}/maintenance`);
    expect(m.status).toBe(503);
    expect(m.json()).toEqual({ message: 'down for maintenance' });
  });

  it('consumers and their credentials work with the bundled auth plugins', async () => {
    expect((await send(`${gateway.url}/back-office/x`)).status).toBe(401);
    expect((await send(`${gateway.url}/back-office/x`, { headers: { apikey: 'wrong' } })).status).toBe(401);
    const r = await send(`${gateway.url}/back-office/x`, { headers: { apikey: 'alice-key' } });
    expect(r.status, r.body).toBe(200);
    const seen = r.json();
    expect(seen.url).toBe('/bo/x');
    expect(seen.headers['x-consumer-username']).toBe('alice');
    expect(seen.headers.apikey).toBeUndefined(); // hide_credentials
  });

  it('converts consumers and credentials, storing only a hash of a basic-auth password', () => {
    const consumers = converted.tenants[0].consumers;
    const alice = consumers.find((c: any) => c.username === 'alice');
    expect(alice.customId).toBe('A-1');
    expect(alice.credentials['key-auth']).toEqual([{ key: 'alice-key' }]);
    expect(alice.credentials.acl).toEqual([{ group: 'admins' }]);
    const basic = alice.credentials['basic-auth'][0];
    expect(basic.username).toBe('alice');
    expect(JSON.stringify(basic)).not.toContain('s3cret');
    const bob = consumers.find((c: any) => c.username === 'only-custom');
    expect(bob.credentials.jwt).toEqual([{ key: 'bob-iss', algorithm: 'HS256', secret: 'bobsecret' }]);
  });

  it('reports what it could not map, and still converts the rest', async () => {
    for (const line of [
      /skipped +services\[3\]\(secure\): protocol https/,
      /dropped +services\[0\]\.routes\[2\]\.paths\[0\]: regex path/,
      /skipped +services\[0\]\.routes\[3\]: matches on headers/,
      /dropped +services\[0\]\(orders\)\.write_timeout/,
      /dropped +services\[0\]\(orders\)\.retries/,
      /skipped +plugins\[0\]\(prometheus\): Isogate bundles no plugin "prometheus"/,
      /skipped +plugins\[1\]\(request-termination\): its route "orders-legacy" was not converted/,
      /skipped +certificates/,
      /skipped +vaults/,
      /changed +consumers\[1\]: no username/,
    ]) expect(stderr).toMatch(line);
    expect((await send(`${gateway.url}/secure`)).status).toBe(404);
    expect((await send(`${gateway.url}/legacy-orders`)).status).toBe(404);
  });

  it('refuses what is not a Kong file, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isogate-kong-'));
    const bad = join(dir, 'kong.yml');
    writeFileSync(bad, 'services: []\n');
    const r = runImport([bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('_format_version undefined: expected "3.0"');
    expect(runImport([]).status).toBe(2);
    expect(runImport([join(dir, 'missing.yml')]).stderr).toContain('cannot read the file: ENOENT');
  });
});
