import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, watch, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { readBeacon, resetBeacon } from '../sandbox/beacon.ts';
import type { ConfigInput } from './config/types.ts';
import type { Logger } from './log.ts';
import { supervisorAdminApi, type AdminApi } from './admin-api/index.ts';

/** Messages from a worker (core/worker.ts) to the supervisor. */
export type ToSupervisor =
  | { t: 'ready'; pid: number; port: number }
  | { t: 'spare'; pid: number }
  | { t: 'failed'; error: string }
  | { t: 'pong'; seq: number }
  | { t: 'sandbox'; slot: number; tenant: string; instances: { id: string; key: string }[] }
  | { t: 'reloaded'; ok: boolean; error?: string; version?: number }
  | { t: 'status'; id: number; status: Record<string, unknown> };

/** Messages from the supervisor to a worker. */
export type ToWorker =
  | { t: 'ping'; seq: number }
  | { t: 'quarantine'; keys: string[] }
  | { t: 'reload' }
  | { t: 'status'; id: number }
  | { t: 'activate' }
  | { t: 'stop' };

export type SupervisorOptions = {
  configFile: string;
  config: ConfigInput;
  /** Overrides config.workers. */
  workers?: number | 'auto';
  log: Logger;
  watch?: boolean;
  /** Overrides config.listen.port (tests use 0... but cluster workers then share one port). */
  port?: number;
};

type WorkerState = {
  worker: Worker;
  index: number;
  beaconFile: string;
  pid: number;
  ready: boolean;
  startedAt: number;
  /** When the oldest ping still unanswered was sent (0: none outstanding). */
  unansweredSince: number;
  /** Sandbox slot -> tenant and instances, as the worker reported them. */
  slots: Map<number, { tenant: string; instances: { id: string; key: string }[] }>;
  cgroup: string | null;
  /** Set when we ended it on purpose (stop, wedge, memory): not a crash to count twice. */
  endedBy: string | null;
  /** A hot spare: loaded, not listening, waiting to replace a worker that dies. */
  spare: boolean;
  /** The spare finished loading. */
  loaded: boolean;
};

type Quarantined = { key: string; instance: string; tenant: string; reason: string; at: string };

/**
 * The supervisor: never runs plugin code. It forks N worker processes sharing the proxy
 * port (node:cluster, each worker accepting for itself), pings them, replaces one that dies
 * or stops answering, bounds their memory, reads the crash beacon of a dead worker to name
 * the plugin instance that was running and quarantines it in every worker, and serves the
 * admin API (/metrics aggregated over workers, /status) for all.
 */
export class Supervisor {
  readonly log: Logger;
  readonly options: SupervisorOptions;
  readonly size: number;
  readonly startedAt = Date.now();
  #workers = new Map<number, WorkerState>(); // by slot index 0..size-1
  #spare: WorkerState | null = null;
  #spareSeq = 1000;
  #quarantined = new Map<string, Quarantined>();
  #admin: Server | null = null;
  #api: AdminApi | null = null;
  /** When the admin API last wrote the config: a worker that was loading then may hold the version before. */
  #apiWroteAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #pingSeq = 0;
  #stopping = false;
  #runDir: string;
  #cgroupRoot: string | null;
  #aggregator = new AggregatorRegistry();
  #registry = new Registry();
  #restarts: Counter<'reason'>;
  #crashLoop = new Map<number, number[]>();
  #statusSeq = 0;
  #statusWaiters = new Map<number, (s: Record<string, unknown>) => void>();
  #firstReady: Promise<void>;
  #resolveFirstReady!: () => void;
  #rejectFirstReady!: (e: Error) => void;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.log = options.log;
    const n = options.workers ?? options.config.workers;
    this.size = n === 'auto' ? availableParallelism() : Math.max(1, n);
    this.#runDir = join(tmpdir(), `isogate-${process.pid}`);
    mkdirSync(this.#runDir, { recursive: true });
    this.#cgroupRoot = makeCgroupRoot(process.pid);
    this.#restarts = new Counter({ name: 'isogate_worker_restarts_total', help: 'Workers replaced, by reason (crash, wedged, memory).', labelNames: ['reason'], registers: [this.#registry] });
    const self = this;
    new Gauge({ name: 'isogate_workers', help: 'Worker processes ready to serve.', registers: [this.#registry], collect() { this.set([...self.#workers.values()].filter((w) => w.ready).length); } });
    new Gauge({
      name: 'isogate_plugin_quarantined',
      help: 'Plugin instances quarantined after crashing a worker (1 each).',
      labelNames: ['tenant', 'instance'],
      registers: [this.#registry],
      collect() {
        this.reset();
        for (const q of self.#quarantined.values()) this.labels(q.tenant, q.instance).set(1);
      },
    });
    this.#firstReady = new Promise((res, rej) => {
      this.#resolveFirstReady = res;
      this.#rejectFirstReady = rej;
    });
  }

  /** Forks the workers and starts the admin listener; resolves once a worker serves. */
  async start(): Promise<void> {
    cluster.schedulingPolicy = cluster.SCHED_NONE; // workers accept on the shared socket themselves
    cluster.setupPrimary({ exec: join(import.meta.dirname, 'worker.ts'), execArgv: ['--no-node-snapshot'], silent: false });
    for (let i = 0; i < this.size; i++) this.#fork(i, false);
    this.#fork(this.#spareSeq++, true);
    const { healthIntervalMs } = this.options.config.supervisor;
    this.#timer = setInterval(() => this.#health(), healthIntervalMs);
    await this.#firstReady;
    const admin = this.options.config.admin;
    // Admin API changes are taken by every serving worker and the loaded spare before they answer.
    this.#api = supervisorAdminApi(this.options.configFile, this.options.config, this.log, () => this.#all().filter((w) => (w.ready || w.loaded) && w.worker.isConnected()).map((w) => w.worker), () => (this.#apiWroteAt = Date.now()));
    this.#admin = createServer((req, res) => void this.#adminRequest(req, res));
    await new Promise<void>((res, rej) => {
      this.#admin!.once('error', rej);
      this.#admin!.listen(admin.port, admin.host, () => res());
    });
    if (this.options.watch === true) this.#watch();
    this.log.info({ workers: this.size, admin: this.#admin.address(), cgroups: this.#cgroupRoot !== null }, 'isogate supervisor up');
  }

  #fork(index: number, spare: boolean): void {
    const beaconFile = join(this.#runDir, `beacon-${index}`);
    resetBeacon(beaconFile);
    const env: Record<string, string> = { ISOGATE_CONFIG: this.options.configFile, ISOGATE_BEACON: beaconFile, ISOGATE_WORKER: String(index), ISOGATE_SPARE: spare ? '1' : '0' };
    if (this.options.port !== undefined) env.ISOGATE_PORT = String(this.options.port);
    const worker = cluster.fork(env);
    const state: WorkerState = {
      worker, index, beaconFile, pid: worker.process.pid ?? 0, ready: false, startedAt: Date.now(), unansweredSince: 0,
      slots: new Map(), cgroup: null, endedBy: null, spare, loaded: false,
    };
    state.cgroup = this.#cgroupFor(state);
    if (spare) this.#spare = state;
    else this.#workers.set(index, state);
    worker.on('message', (m: ToSupervisor) => this.#message(state, m));
    worker.on('exit', (code, signal) => this.#exited(state, code, signal));
  }

  #message(w: WorkerState, m: ToSupervisor): void {
    switch (m.t) {
      case 'spare':
        w.loaded = true;
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload' } satisfies ToWorker);
        if (this.#quarantined.size > 0) w.worker.send({ t: 'quarantine', keys: [...this.#quarantined.keys()] } satisfies ToWorker);
        this.log.debug({ pid: m.pid, ms: Date.now() - w.startedAt }, 'hot spare loaded');
        break;
      case 'ready':
        w.ready = true;
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload' } satisfies ToWorker);
        w.unansweredSince = 0;
        if (this.#quarantined.size > 0) w.worker.send({ t: 'quarantine', keys: [...this.#quarantined.keys()] } satisfies ToWorker);
        this.log.info({ worker: w.index, pid: m.pid, ms: Date.now() - w.startedAt }, 'worker ready');
        this.#resolveFirstReady();
        break;
      case 'failed':
        this.log.error({ worker: w.index }, `worker could not start: ${m.error}`);
        this.#rejectFirstReady(new Error(m.error));
        break;
      case 'pong':
        w.unansweredSince = 0;
        break;
      case 'sandbox':
        w.slots.set(m.slot, { tenant: m.tenant, instances: m.instances });
        break;
      case 'reloaded':
        if (!m.ok) this.log.error({ worker: w.index }, `reload rejected: ${m.error}`);
        break;
      case 'status': {
        const waiter = this.#statusWaiters.get(m.id);
        if (waiter !== undefined) waiter({ worker: w.index, ...m.status });
        break;
      }
    }
  }

  /** Who was running when worker `w` died: the instance its beacon names, quarantined everywhere. */
  #blame(w: WorkerState, reason: string): void {
    const record = readBeacon(w.beaconFile);
    if (record === null || !record.inCall) return;
    const slot = w.slots.get(record.slot);
    if (slot === undefined) return;
    const inst = slot.instances[record.instance];
    if (inst === undefined) {
      this.log.error({ worker: w.index, tenant: slot.tenant, reason }, 'worker died in a sandbox call of this tenant; the plugin could not be named');
      return;
    }
    if (this.#quarantined.has(inst.key)) return;
    this.#quarantined.set(inst.key, { key: inst.key, instance: inst.id, tenant: slot.tenant, reason, at: new Date().toISOString() });
    this.log.error({ worker: w.index, tenant: slot.tenant, instance: inst.id, reason }, 'plugin instance quarantined: it was running when its worker died');
    for (const other of this.#all()) {
      if (other !== w && other.worker.isConnected()) other.worker.send({ t: 'quarantine', keys: [inst.key] } satisfies ToWorker);
    }
  }

  #all(): WorkerState[] {
    const all = [...this.#workers.values()];
    if (this.#spare !== null) all.push(this.#spare);
    return all;
  }

  #exited(w: WorkerState, code: number | null, signal: string | null): void {
    if (this.#workers.get(w.index) === w) this.#workers.delete(w.index);
    this.#dropCgroup(w);
    if (this.#stopping) return;
    if (w.spare) {
      // A spare that dies is only replaced (it served nothing); a config that cannot load stops the spares.
      if (this.#spare === w) this.#spare = null;
      if (code !== 78) setTimeout(() => !this.#stopping && this.#spare === null && this.#fork(this.#spareSeq++, true), 1000).unref();
      return;
    }
    if (code === 78) {
      // The config cannot start: retrying would only loop.
      if (![...this.#workers.values()].some((o) => o.ready)) this.#rejectFirstReady(new Error('worker could not load the config'));
      this.log.error({ worker: w.index }, 'worker exited: config cannot start; not restarting it');
      return;
    }
    const reason = w.endedBy ?? 'crash';
    this.#restarts.labels(reason).inc();
    this.log.error({ worker: w.index, pid: w.pid, code, signal, reason }, 'worker died; replacing it');
    this.#blame(w, reason);
    // Back off only if this slot keeps dying right after starting.
    const now = Date.now();
    const recent = (this.#crashLoop.get(w.index) ?? []).filter((t) => now - t < 10_000);
    recent.push(now);
    this.#crashLoop.set(w.index, recent);
    const spare = this.#spare;
    if (spare !== null && spare.loaded && spare.worker.isConnected()) {
      // The hot spare takes over at once; a new spare loads in the background.
      this.#spare = null;
      spare.spare = false;
      spare.index = w.index;
      spare.startedAt = Date.now();
      this.#workers.set(w.index, spare);
      spare.worker.send({ t: 'activate' } satisfies ToWorker);
      this.#fork(this.#spareSeq++, true);
      return;
    }
    const delay = recent.length <= 3 ? 0 : Math.min(5_000, 250 * 2 ** (recent.length - 3));
    setTimeout(() => {
      if (!this.#stopping) this.#fork(w.index, false);
    }, delay).unref();
  }

  #lastTick = Date.now();

  #health(): void {
    const { healthIntervalMs, healthTimeoutMs, workerMemoryMb } = this.options.config.supervisor;
    const now = Date.now();
    // If the supervisor itself was held up (a stalled machine, a debugger), the workers'
    // silence says nothing about them: judge nobody this tick, ping again.
    const stalled = now - this.#lastTick > 2 * healthIntervalMs + 100;
    this.#lastTick = now;
    const seq = ++this.#pingSeq;
    for (const w of this.#all()) {
      if (!w.worker.isConnected() || w.endedBy !== null) continue;
      if (stalled) {
        w.unansweredSince = 0;
      } else if ((w.ready || w.loaded) && w.unansweredSince !== 0 && now - w.unansweredSince > healthTimeoutMs) {
        this.#end(w, 'wedged', `no answer to pings for ${now - w.unansweredSince} ms`);
        continue;
      }
      const rss = rssMb(w.pid);
      if (rss !== null && rss > workerMemoryMb) {
        this.#end(w, 'memory', `resident memory ${rss} MB is above workerMemoryMb ${workerMemoryMb}`);
        continue;
      }
      if (w.ready || w.loaded) {
        if (w.unansweredSince === 0) w.unansweredSince = now;
        w.worker.send({ t: 'ping', seq } satisfies ToWorker);
      }
    }
  }

  #end(w: WorkerState, reason: string, why: string): void {
    w.endedBy = reason;
    this.log.error({ worker: w.index, pid: w.pid, reason }, `killing worker: ${why}`);
    w.worker.process.kill('SIGKILL');
  }

  #cgroupFor(w: WorkerState): string | null {
    if (this.#cgroupRoot === null || w.pid === 0) return null;
    const dir = join(this.#cgroupRoot, `worker-${w.index}-${w.pid}`);
    try {
      mkdirSync(dir);
      const bytes = String(this.options.config.supervisor.workerMemoryMb * 1024 * 1024);
      if (existsSync(join(dir, 'memory.max'))) writeFileSync(join(dir, 'memory.max'), bytes);
      else writeFileSync(join(dir, 'memory.limit_in_bytes'), bytes);
      writeFileSync(join(dir, 'cgroup.procs'), String(w.pid));
      return dir;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'memory cgroup not available for the worker');
      try { rmdirSync(dir); } catch { /* never made */ }
      return null;
    }
  }

  #dropCgroup(w: WorkerState): void {
    if (w.cgroup === null) return;
    const dir = w.cgroup;
    w.cgroup = null;
    // The kernel refuses while the dead process is still being reaped: retry briefly.
    const attempt = (n: number) => {
      try {
        rmdirSync(dir);
      } catch {
        if (n > 0) setTimeout(() => attempt(n - 1), 100).unref();
      }
    };
    attempt(20);
  }

  reload(): void {
    this.log.info('reloading config in every worker');
    for (const w of this.#all()) if (w.worker.isConnected()) w.worker.send({ t: 'reload' } satisfies ToWorker);
  }

  #watch(): void {
    let timer: NodeJS.Timeout | null = null;
    const file = basename(this.options.configFile);
    watch(dirname(this.options.configFile), (_e, name) => {
      if (name !== null && name !== file) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        this.reload();
      }, 100);
    }).unref();
  }

  async #workerStatuses(): Promise<Record<string, unknown>[]> {
    const live = [...this.#workers.values()].filter((w) => w.ready && w.worker.isConnected());
    return Promise.all(
      live.map(
        (w) =>
          new Promise<Record<string, unknown>>((resolve) => {
            const id = ++this.#statusSeq;
            const t = setTimeout(() => {
              this.#statusWaiters.delete(id);
              resolve({ worker: w.index, pid: w.pid, error: 'no answer' });
            }, 1000);
            this.#statusWaiters.set(id, (s) => {
              clearTimeout(t);
              this.#statusWaiters.delete(id);
              resolve(s);
            });
            w.worker.send({ t: 'status', id } satisfies ToWorker);
          }),
      ),
    );
  }

  async status(): Promise<Record<string, unknown>> {
    const workers = await this.#workerStatuses();
    const first = workers.find((w) => w.version !== undefined) ?? {};
    return {
      name: 'isogate',
      version: first.version,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      config: first.config,
      counts: first.counts,
      workers: {
        size: this.size,
        ready: [...this.#workers.values()].filter((w) => w.ready).length,
        // The hot spare that takes over when a worker dies: loaded and waiting, or not yet.
        spareReady: this.#spare !== null && this.#spare.loaded,
        status: workers,
      },
      quarantined: [...this.#quarantined.values()],
    };
  }

  async #adminRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (this.#api?.owns(path) === true) return this.#api.handle(req, res);
    try {
      if (path === '/metrics') {
        const [workers, own] = await Promise.all([this.#aggregator.clusterMetrics(), this.#registry.metrics()]);
        res.writeHead(200, { 'content-type': this.#registry.contentType });
        res.end(`${workers}\n${own}`);
        return;
      }
      if (path === '/status') {
        const body = JSON.stringify(await this.status());
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const body = '{"error":{"code":"ISG_ERR_NO_ROUTE","message":"admin endpoints: /metrics, /status"}}';
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'ISG_ERR_INTERNAL', message: (err as Error).message } }));
    }
  }

  /** Stops every worker (they drain), then the admin listener. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    const exits = this.#all().map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.worker.isDead()) return resolve();
          w.worker.once('exit', () => resolve());
          if (w.worker.isConnected()) w.worker.send({ t: 'stop' } satisfies ToWorker);
          setTimeout(() => w.worker.process.kill('SIGKILL'), 8_000).unref();
        }),
    );
    await Promise.all(exits);
    await new Promise<void>((r) => (this.#admin === null ? r() : this.#admin.close(() => r())));
    for (const w of this.#all()) this.#dropCgroup(w);
    if (this.#cgroupRoot !== null) {
      try { rmdirSync(this.#cgroupRoot); } catch { /* still busy: the OS cleans it later */ }
    }
    rmSync(this.#runDir, { recursive: true, force: true });
  }
}

function rssMb(pid: number): number | null {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Math.round((Number(statm[1]) * 4096) / (1024 * 1024));
  } catch {
    return null;
  }
}

/**
 * A memory cgroup folder for our workers, where the OS lets us make one (cgroup v2, or
 * v1's memory controller, writable by us). Null elsewhere: the supervisor's resident-size
 * check is then the only bound.
 */
function makeCgroupRoot(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  const candidates: string[] = [];
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers === '' && existsSync('/sys/fs/cgroup/cgroup.controllers')) candidates.push(join('/sys/fs/cgroup', path));
      if (controllers.split(',').includes('memory')) candidates.push(join('/sys/fs/cgroup/memory', path));
    }
  } catch {
    return null;
  }
  for (const base of candidates) {
    const dir = join(base, `isogate-${pid}`);
    try {
      mkdirSync(dir);
      if (existsSync(join(dir, 'memory.max')) || existsSync(join(dir, 'memory.limit_in_bytes'))) return dir;
      rmdirSync(dir);
    } catch {
      /* not ours to write */
    }
  }
  return null;
}
