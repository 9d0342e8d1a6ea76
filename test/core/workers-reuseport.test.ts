import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { echoHandler, freePort, startUpstream, waitFor, writeConfig, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { alive, childrenOf, groupMembers } from '../helpers/procs.ts';

// The proxy port under a supervisor: one SO_REUSEPORT socket per worker slot, bound and
// held by the supervisor (core/supervisor/sockets.ts). The real CLI in a child process.

const ROOT = join(import.meta.dirname, '..', '..');

type WorkerEntry = { worker?: number; pid: number; state: string; counts: { requests: number } };
type Spread = { listener: string; serving: WorkerEntry[]; spare: WorkerEntry | null };

async function spread(gw: GatewayProcess): Promise<Spread> {
  const s = await gw.status();
  return { listener: s.workers.listener, serving: s.workers.status, spare: s.workers.spare };
}

/** `n` requests on fresh connections, `concurrency` at a time: their codes; `timing`, when given, gets each one's start and end (epoch ms). */
async function fresh(url: string, n: number, concurrency: number, timing?: { start: number; end: number }[]): Promise<(number | string)[]> {
  const out: (number | string)[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) {
        const start = Date.now();
        try {
          const r = await request(url, { reset: true });
          await r.body.text();
          out.push(r.statusCode);
        } catch (err) {
          out.push((err as { code?: string }).code ?? String(err));
        }
        timing?.push({ start, end: Date.now() });
      }
    }),
  );
  return out;
}

/** Steady traffic until stop(): keep-alive loops on one agent and fresh-connection loops; every answer that is not a 200 is kept. */
function traffic(url: string, keepAlive: number, freshLoops: number) {
  const agent = new Agent({ connections: keepAlive });
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loop = async (reset: boolean) => {
    while (running) {
      try {
        const r = await request(url, reset ? { reset: true } : { dispatcher: agent });
        await r.body.text();
        if (r.statusCode === 200) ok++;
        else failures.push(`${reset ? 'fresh' : 'keep-alive'}: ${r.statusCode}`);
      } catch (err) {
        failures.push(`${reset ? 'fresh' : 'keep-alive'}: ${(err as { code?: string }).code ?? err}`);
      }
    }
  };
  const loops = [...Array.from({ length: keepAlive }, () => loop(false)), ...Array.from({ length: freshLoops }, () => loop(true))];
  return {
    get ok() {
      return ok;
    },
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

const yaml = (up: Upstream, workers: number, extra = '') => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
log: { level: info, access: false }
workers: ${workers}
supervisor: { healthTimeoutMs: 1000 }
${extra}
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
`;

describe('workers: one SO_REUSEPORT socket per worker, held by the supervisor', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(yaml(up, 2));
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('spreads fresh connections over both workers; the hot spare serves none', async () => {
    const codes = await fresh(`${gw.url}/spread`, 300, 6);
    expect(codes.filter((c) => c !== 200)).toEqual([]);
    const s = await spread(gw);
    expect(s.listener).toBe('reuseport');
    expect(s.serving.map((w) => w.state)).toEqual(['serving', 'serving']);
    const counts = s.serving.map((w) => w.counts.requests);
    const total = counts.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(300);
    console.log(`spread of 300 fresh connections over 2 workers: ${counts.join(' / ')}`);
    for (const n of counts) expect(n / total).toBeGreaterThan(0.2);
    expect(s.spare).toMatchObject({ state: 'spare', counts: { requests: 0 } });
    // The same figures in /metrics, one series per worker slot.
    const m = await gw.metrics();
    for (const w of s.serving) expect(m).toMatch(new RegExp(`isogate_worker_requests_total\\{worker="${w.worker}"\\} ${w.counts.requests}\\n`));
    expect(m.match(/^isogate_worker_requests_total\{/gm)).toHaveLength(2);
  });

  it('keeps the connections queued on a wedged worker: the spare that takes its slot serves them', async () => {
    const before = await spread(gw);
    const victim = before.serving[0];
    const sparePid = before.spare!.pid;
    // A stopped worker accepts nothing: the connections the kernel sends its socket queue there
    // until the supervisor kills it as wedged (healthTimeoutMs 1000) and the spare takes over.
    process.kill(victim.pid, 'SIGSTOP');
    try {
      const codes = await fresh(`${gw.url}/queued`, 40, 40);
      expect(codes.filter((c) => c !== 200)).toEqual([]);
    } finally {
      if (alive(victim.pid)) process.kill(victim.pid, 'SIGCONT');
    }
    expect(alive(victim.pid)).toBe(false);
    const after = await spread(gw);
    const promoted = after.serving.find((w) => w.pid === sparePid)!;
    expect(promoted).toMatchObject({ worker: victim.worker, state: 'serving' });
    // What hashed to the stopped worker's socket (about half of 40) waited there and was served by the spare.
    console.log(`queued on the wedged worker and served by the spare: ${promoted.counts.requests} of 40`);
    expect(promoted.counts.requests).toBeGreaterThan(4);
    await waitFor(async () => (await spread(gw)).spare !== null, 30_000, 'a new hot spare');
    expect((await spread(gw)).spare!.counts.requests).toBe(0);
    expect(await gw.metrics()).toMatch(/isogate_worker_restarts_total\{reason="wedged"\} 1\n/);
  }, 60_000);

  it('loses no request when a worker retires (SIGTERM) under steady keep-alive and fresh-connection traffic', async () => {
    await waitFor(async () => (await spread(gw)).spare !== null, 30_000, 'a loaded hot spare');
    const before = await spread(gw);
    const t = traffic(`${gw.url}/retire`, 4, 4);
    await new Promise((r) => setTimeout(r, 500));
    const retiring = before.serving[1];
    process.kill(retiring.pid, 'SIGTERM');
    await waitFor(() => !alive(retiring.pid), 15_000, 'the retiring worker to exit');
    await new Promise((r) => setTimeout(r, 500));
    await t.stop();
    console.log(`retire: ${t.ok} ok, failures: ${JSON.stringify(t.failures)}`);
    expect(t.failures).toEqual([]);
    expect(t.ok).toBeGreaterThan(50);
    const after = await spread(gw);
    expect(after.serving.find((w) => w.pid === before.spare!.pid)).toMatchObject({ worker: retiring.worker, state: 'serving' });
    expect(after.serving.find((w) => w.pid === before.spare!.pid)!.counts.requests).toBeGreaterThan(0);
  }, 60_000);

  it('loses no request over a reload under steady keep-alive and fresh-connection traffic', async () => {
    const t = traffic(`${gw.url}/reload`, 4, 4);
    await new Promise((r) => setTimeout(r, 300));
    const v0 = (await gw.status()).config.version;
    gw.child.kill('SIGHUP');
    await waitFor(async () => (await gw.status()).config.version > v0, 15_000, 'the reload');
    await new Promise((r) => setTimeout(r, 300));
    await t.stop();
    expect(t.failures).toEqual([]);
    expect(t.ok).toBeGreaterThan(20);
  }, 60_000);
});

describe('workers: 1 and the proxy socket', () => {
  let up: Upstream;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
  });
  afterAll(async () => {
    await up?.close();
  });

  it('refuses no connection while its only worker is replaced: they wait on the held socket for the spare', async () => {
    const gw = await spawnGateway(yaml(up, 1));
    try {
      const before = await spread(gw);
      const t = traffic(`${gw.url}/one`, 0, 4);
      await new Promise((r) => setTimeout(r, 300));
      process.kill(before.serving[0].pid, 'SIGSTOP'); // accepts nothing from now on; killed as wedged
      await waitFor(async () => (await spread(gw)).serving.some((w) => w.pid === before.spare!.pid), 15_000, 'the spare to take over');
      await new Promise((r) => setTimeout(r, 300));
      await t.stop();
      // Only a request the stopped worker had accepted can fail (at most one per loop); none is refused.
      console.log(`one worker replaced: ${t.ok} ok, failures: ${JSON.stringify(t.failures)}`);
      expect(t.failures.filter((f) => f.includes('ECONNREFUSED'))).toEqual([]);
      expect(t.failures.length).toBeLessThanOrEqual(4);
      expect(t.ok).toBeGreaterThan(10);
    } finally {
      await gw.stop();
    }
  }, 60_000);

  it('with no spare to take a dead worker\'s slot, its share of new connections goes to the other worker at once', async () => {
    const gw = await spawnGateway(yaml(up, 2));
    try {
      const before = await spread(gw);
      // No loaded spare: the next one is forked a second after this one died.
      process.kill(before.spare!.pid, 'SIGKILL');
      await waitFor(async () => (await spread(gw)).spare === null, 15_000, 'the spare to be gone');
      const [dead] = before.serving;
      process.kill(dead.pid, 'SIGKILL');
      await waitFor(async () => !(await spread(gw)).serving.some((w) => w.pid === dead.pid), 15_000, 'the dead worker to leave');
      const timing: { start: number; end: number }[] = [];
      const codes = await fresh(`${gw.url}/renewed`, 40, 8, timing);
      expect(codes.filter((c) => c !== 200)).toEqual([]);
      // None waited on the dead worker's socket. The slot got a fresh socket at once, so its
      // share of new connections went to the other worker until the slot's new worker
      // listened (on an idle machine that is ~0.5 s after the death; on a loaded one the 40
      // may all be answered before). A request queued on the dead socket would have been
      // answered only once that new worker listened: started before it was ready, ended
      // after, having waited for it.
      await waitFor(async () => (await spread(gw)).serving.length === 2, 30_000, 'the slot\'s new worker');
      const ready = gw.output().split('\n').filter((l) => l.includes('"worker ready"') && l.includes(`"worker":${dead.worker}`)).at(-1)!;
      const readyAt = Date.parse(JSON.parse(ready).time);
      const waited = timing.filter((t) => t.start < readyAt && t.end >= readyAt && t.end - t.start > 250);
      expect(waited, `requests that waited for the slot's new worker (ready at ${new Date(readyAt).toISOString()})`).toEqual([]);
      // The new socket joined the group: the new worker gets its share again.
      await fresh(`${gw.url}/rejoined`, 100, 6);
      expect((await spread(gw)).serving.find((w) => w.worker === dead.worker)!.counts.requests).toBeGreaterThan(20);
    } finally {
      await gw.stop();
    }
  }, 60_000);

  it('with listen.reusePort false: one socket all workers accept on, still spread and held', async () => {
    const gw = await spawnGateway(yaml(up, 2).replace('port: ${PORT} }', 'port: ${PORT}, reusePort: false }'));
    try {
      const codes = await fresh(`${gw.url}/shared`, 100, 6);
      expect(codes.filter((c) => c !== 200)).toEqual([]);
      const s = await spread(gw);
      expect(s.listener).toBe('shared');
      expect(s.serving.reduce((a, w) => a + w.counts.requests, 0)).toBeGreaterThanOrEqual(100);
      expect(s.spare!.counts.requests).toBe(0);
    } finally {
      await gw.stop();
    }
  }, 60_000);

  it('refuses a port another process listens on, as without SO_REUSEPORT', async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', r));
    try {
      await expect(spawnGateway(yaml(up, 1).replace('port: ${PORT} }', `port: ${port} }`), {}, [], 20_000)).rejects.toThrow(/EADDRINUSE/);
    } finally {
      taken.close();
    }
  }, 30_000);

  it('Ctrl-C (SIGINT to the whole group) stops the supervisor and every worker, and frees the port', async () => {
    const port = await freePort();
    const adminPort = await freePort();
    const file = writeConfig(yaml(up, 2).replaceAll('${PORT}', String(port)).replaceAll('${ADMIN_PORT}', String(adminPort)));
    const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', file], { cwd: ROOT, detached: true, stdio: 'ignore', env: { ...process.env, ISOGATE_LOG_LEVEL: 'warn' } });
    const pgrp = child.pid!;
    try {
      await waitFor(async () => {
        const s = await fetch(`http://127.0.0.1:${adminPort}/status`).then((r) => r.json(), () => null);
        return s?.workers?.ready === 2 && s.workers.spareReady === true;
      }, 60_000, 'the gateway');
      expect((await fresh(`http://127.0.0.1:${port}/x`, 10, 2)).every((c) => c === 200)).toBe(true);
      const workers = childrenOf(child.pid!);
      expect(workers.length).toBe(3); // 2 workers and the spare
      process.kill(-pgrp, 'SIGINT');
      await waitFor(() => groupMembers(pgrp).length === 0, 15_000, 'every process of the group to exit');
      for (const pid of workers) expect(alive(pid)).toBe(false);
      // Nothing holds the port any more: a plain listen gets it.
      const probe = createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(port, '127.0.0.1', resolve);
      });
      probe.close();
    } finally {
      if (groupMembers(pgrp).length > 0) process.kill(-pgrp, 'SIGKILL');
    }
  }, 90_000);
});
