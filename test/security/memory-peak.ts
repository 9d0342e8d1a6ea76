/**
 * Process-level memory attacks (the real CLI in a child process: supervisor, one worker,
 * hot spare): tenant `evil` runs the attack as an access plugin in a 64 MB isolate, tenant
 * `good` is sent keep-alive requests all along. Reports how far the worker grew past its
 * resident size before the attack (VmHWM, sampled every 5 ms) and what the good tenant saw.
 * bench/memory-overshoot.ts measures the same for every pattern; SECURITY.md has the table.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { plugin } from './helpers.ts';

export type PeakLab = { gw: GatewayProcess; up: Upstream; stop(): Promise<void> };

export async function startPeakLab(handlerBody: string, o: { cpuMs?: number; memoryMb?: number } = {}): Promise<PeakLab> {
  const up = await startUpstream(echoHandler);
  const cpuMs = o.cpuMs ?? 50;
  const gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
limits: { ceilings: { cpuMs: ${Math.max(1000, cpuMs)} } }
sandbox: { breaker: { faults: 1000 } }
tenants:
  - name: evil
    limits: { memoryMb: ${o.memoryMb ?? 64}, cpuMs: ${cpuMs} }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: evil, path: ./evil.ts }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
`, { 'evil.ts': plugin(`export function access(pdk) { ${handlerBody} }`) });
  return { gw, up, stop: async () => { await gw.stop(); await up.close(); } };
}

function status(pid: number): { hwm: number; rss: number } | null {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { hwm: Number(/VmHWM:\s+(\d+)/.exec(t)?.[1]) / 1024, rss: Number(/VmRSS:\s+(\d+)/.exec(t)?.[1]) / 1024 };
  } catch {
    return null;
  }
}

export type AttackReport = {
  /** Status of each attack request, or 'connection lost'. */
  evil: (number | string)[];
  /** Worst growth of the serving worker: VmHWM after minus VmRSS before, in MB. */
  growthMb: number;
  victimOk: number;
  victimFailed: number;
  victimWorstMs: number;
};

/** Sends `attacks` attack requests one after another while the good tenant is served; measures. */
export async function attack(lab: PeakLab, attacks = 2): Promise<AttackReport> {
  const s = await lab.gw.status();
  const pid = s.workers.status[0].pid as number;
  const before = status(pid)!;
  let hwm = before.hwm;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      // A dying worker's status has no VmHWM line (a zombie): keep the last figure.
      const now = status(pid)?.hwm;
      if (now !== undefined && Number.isFinite(now)) hwm = now;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const agent = new Agent({ connections: 1 });
  let running = true;
  let victimOk = 0;
  let victimFailed = 0;
  let victimWorstMs = 0;
  const victim = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const r = await request(`${lab.gw.url}/good`, { dispatcher: agent, headersTimeout: 10_000 });
        await r.body.dump();
        if (r.statusCode === 200) victimOk++;
        else victimFailed++;
      } catch {
        victimFailed++;
      }
      victimWorstMs = Math.max(victimWorstMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const evil: (number | string)[] = [];
  for (let i = 0; i < attacks; i++) {
    try {
      const r = await request(`${lab.gw.url}/evil`, { reset: true, headersTimeout: 20_000 });
      await r.body.dump();
      evil.push(r.statusCode);
    } catch {
      evil.push('connection lost');
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  running = false;
  sampling = false;
  await Promise.all([victim, sampler]);
  await agent.close();
  return { evil, growthMb: Math.round(hwm - before.rss), victimOk, victimFailed, victimWorstMs: Math.round(victimWorstMs) };
}

/** Failure count of the evil plugin for `reason`, from /metrics. */
export async function evilFailures(lab: PeakLab, reason: string): Promise<number> {
  const m = new RegExp(`isogate_plugin_failures_total\\{tenant="evil",plugin="evil",reason="${reason}"\\} (\\d+)`).exec(await lab.gw.metrics());
  return m === null ? 0 : Number(m[1]);
}

/**
 * What a pattern that holds the worker's thread in one builtin call may end as: the call
 * fails inside the worker (500, outcome cpu or memory), or the worker's sentinel finds the
 * thread still stuck 200 ms after the watchdog's dispose and kills the process as wedged,
 * once (SECURITY.md, wedges): then the plugin is quarantined and later attacks get 503.
 * Returns how many times the worker was killed.
 */
export async function containedOrWedgedOnce(lab: PeakLab, r: AttackReport): Promise<number> {
  const metrics = await lab.gw.metrics();
  const restarts = /isogate_worker_restarts_total\{reason="wedged"\} (\d+)/.exec(metrics);
  const killed = restarts === null ? 0 : Number(restarts[1]);
  if (killed === 0) {
    if (r.evil.some((s) => s !== 500)) throw new Error(`attacks answered ${JSON.stringify(r.evil)} without a worker restart`);
    if ((await evilFailures(lab, 'cpu')) + (await evilFailures(lab, 'memory')) !== r.evil.length) throw new Error('not every attack ended as cpu or memory');
    return 0;
  }
  if (killed !== 1 || /isogate_worker_restarts_total\{reason="(crash|memory)"\}/.test(metrics)) throw new Error(`the worker was replaced more than once: ${metrics.match(/isogate_worker_restarts_total.*/g)}`);
  // Quarantined after the first wedge: the next attack is refused before it runs.
  const next = await request(`${lab.gw.url}/evil`, { reset: true, headersTimeout: 20_000 });
  await next.body.dump();
  if (next.statusCode !== 503) throw new Error(`after the wedge the attack got ${next.statusCode}, not 503 (quarantined)`);
  return killed;
}
