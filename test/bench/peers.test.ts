import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENRESTY_CHAINS, openrestyConfig, openrestyPath } from '../../bench/peers/openresty.ts';
import { probeHeaderPlugins } from '../../bench/peers/probe.ts';
import { freePort, start, stop, waitPort, which, type Proc } from '../../bench/lib/procs.ts';
import { startUpstream, type Upstream } from '../helpers/gateway.ts';

/**
 * The bench's per-plugin anchors really run their plugins: the probe the harness runs before
 * measuring passes on the real peers and fails on a chain of the wrong length (so a peer
 * whose plugin code did not run cannot be measured as the cheapest plugin of all).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'isogate-bench-peers-'));
const procs: Proc[] = [];
let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
});
afterAll(async () => {
  await Promise.all(procs.map((p) => stop(p)));
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bench peers', () => {
  it('naive-ivm: n isolates set exactly n plugins\' headers in access and header filter', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const p = start({ name: 'naive-ivm', cmd: process.execPath, args: ['--no-node-snapshot', join(ROOT, 'bench', 'peers', 'naive-ivm.ts'), '--port', String(port), '--upstream', upstream.url, '--plugins', '5'], cpus: null, cwd: ROOT });
    procs.push(p);
    await waitPort(port, p);
    await probeHeaderPlugins(port, '/', 5);
    await expect(probeHeaderPlugins(port, '/', 4)).rejects.toThrow(/x-bench-5-access: "probe-/);
    await expect(probeHeaderPlugins(port, '/', 6)).rejects.toThrow(/x-bench-6-access: absent, x-bench-6-filter: absent/);
  });

  it('openresty: each location runs its chain of Lua plugins, or the peer says why it cannot run', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const c = openrestyConfig(join(dir, 'openresty'), port, upstream.port, which('nginx'));
    if ('skip' in c) {
      // No nginx or no lua module here: the bench skips the peer with this reason.
      expect(c.skip).toMatch(/nginx is not on the PATH|lua-nginx-module is not installed|nginx refuses the lua config/);
      return;
    }
    const p = start({ name: 'openresty', cmd: c.cmd, args: c.args, cpus: null });
    procs.push(p);
    await waitPort(port, p);
    for (const n of OPENRESTY_CHAINS) await probeHeaderPlugins(port, openrestyPath(n), n);
    await expect(probeHeaderPlugins(port, openrestyPath(5), 4)).rejects.toThrow(/x-bench-5-access: "probe-/);
    await expect(probeHeaderPlugins(port, openrestyPath(0), 1)).rejects.toThrow(/x-bench-1-access: absent/);
  });

  it('openresty: without nginx the peer is skipped with the reason', () => {
    expect(openrestyConfig(join(dir, 'none'), 1, 1, null)).toEqual({ skip: 'nginx is not on the PATH' });
  });
});
