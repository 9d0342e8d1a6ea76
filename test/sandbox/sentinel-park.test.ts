import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { alive, childrenOf } from '../helpers/procs.ts';

// Regression (issue 11): the sentinel thread woke every millisecond whether or not a call
// ran, ~1,000 context switches and ~2.8 % of a core a second per idle worker, the hot
// spare included. It now parks after 50 ms without a call and wakes 20 times a second
// (the orphan check) until the next call wakes it.
const IDLE_S = 2;
/** Context switches a second of a parked sentinel: ~20 (its timed wake-ups), against ~1,000 ticking. */
const PARKED_MAX = 100;

/** The sentinel's thread (sandbox/beacon.ts names it) of worker `pid`: voluntary plus involuntary switches so far. */
function sentinelSwitches(pid: number): number {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== 'sentinel') continue;
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]);
    } catch {
      /* a thread that just ended */
    }
  }
  throw new Error(`no thread named sentinel in worker ${pid}`);
}

/** Context switches a second of each worker's sentinel over IDLE_S seconds. */
async function switchRates(pids: number[]): Promise<number[]> {
  const before = pids.map(sentinelSwitches);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  return pids.map((p, i) => (sentinelSwitches(p) - before[i]) / IDLE_S);
}

describe('the sentinel parks while no call runs', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  let workers: number[];
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: correlation-id, config: { echo_downstream: true } }]
`);
    workers = childrenOf(gw.child.pid!).filter((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() !== 'esbuild');
  }, 90_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('in the serving worker and the hot spare, before and after calls', async () => {
    expect(workers.length).toBe(2); // the worker and the hot spare
    const idle = await switchRates(workers);
    // Calls wake it (a plugin runs per request) ...
    for (let i = 0; i < 20; i++) {
      const r = await request(`${gw.url}/`);
      await r.body.text();
      expect(r.statusCode).toBe(200);
      expect(r.headers['kong-request-id']).toMatch(/^[0-9a-f-]{36}#\d+$/); // the plugin ran
    }
    // ... and it parks again after them.
    const after = await switchRates(workers);
    console.log(`sentinel park: context switches/s of each worker's sentinel, idle ${idle.join(' ')}, after calls ${after.join(' ')}`);
    for (const rate of [...idle, ...after]) expect(rate).toBeLessThan(PARKED_MAX);
  }, 60_000);
});

// A parked sentinel still watches the supervisor: a worker whose main thread is stuck
// outside any call (so the sentinel is parked, not ticking) dies when its parent does.
// The worker here is the beacon alone in a process whose parent is a shell, which the
// test kills; its main thread then blocks for good.
const BEACON = pathToFileURL(join(import.meta.dirname, '..', '..', 'sandbox', 'beacon.ts')).href;
const STUCK_WORKER = `
import { beacon } from ${JSON.stringify(BEACON)};
await beacon.ready();
beacon.supervised(process.argv[2], process.ppid);
while (!beacon.parked) await new Promise((r) => setTimeout(r, 5));
await new Promise((r) => setTimeout(r, 100)); // parked, with the supervised message read
console.log(process.pid);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // stuck, in no call
`;

describe('a parked sentinel', () => {
  const leftovers: number[] = [];
  afterAll(() => {
    for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });

  it("ends its process within a second of the supervisor's death, the main thread stuck outside any call", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'isogate-park-'));
    writeFileSync(join(dir, 'worker.mjs'), STUCK_WORKER);
    // The shell stays the worker's parent (`; true`: it cannot exec the node command).
    const sh = spawn('sh', ['-c', `"${process.execPath}" --no-node-snapshot worker.mjs beacon; true`], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sh.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const pid = Number(await waitFor(() => /^(\d+)\n/.exec(out)?.[1], 20_000, 'the worker to park'));
    leftovers.push(pid, sh.pid!);
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    sh.kill('SIGKILL');
    await waitFor(() => !alive(pid), 5_000, 'the stuck worker to exit');
    const ms = Date.now() - t0;
    console.log(`sentinel park: the stuck worker gone ${ms} ms after its parent was killed`);
    // The orphan grace (400 ms) plus at most one parked wait (50 ms), on a loaded machine.
    expect(ms).toBeLessThan(1_000);
  }, 30_000);
});
