import cluster, { type Worker } from 'node:cluster';
import { mkdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { readBeacon, resetBeacon, type BeaconRecord } from '../sandbox/beacon.ts';
import { ADMIN_PATHS, healthBody, json, readyBody } from './admin.ts';
import { answerClientError } from './request-checks.ts';
import type { ConfigInput } from './config/types.ts';
import type { Logger } from './log.ts';
import { supervisorAdminApi, type AdminApi } from './admin-api/index.ts';
import { promText } from './metrics.ts';
import { ReloadRound, type ReloadOutcome } from './reload-round.ts';
import { makeCgroupRoot, removeCgroup, writeMemoryBound } from './supervisor/cgroups.ts';
import { FileWatch } from './watch.ts';

/** Messages from a worker (core/worker.ts) to the supervisor. */
export type ToSupervisor =
  | { t: 'ready'; pid: number; port: number }
  | { t: 'spare'; pid: number }
  | { t: 'failed'; error: string }
  | { t: 'pong'; seq: number }
  | { t: 'sandbox'; slot: number; tenant: string; instances: { id: string; key: string }[] }
  | { t: 'reloaded'; seq: number; ok: boolean; error?: string; version?: number }
  | { t: 'status'; id: number; status: Record<string, unknown> }
  /** The config file and its plugins' files, for --watch (after start and each reload). */
  | { t: 'watch'; files: string[] };

/** Messages from the supervisor to a worker. */
export type ToWorker =
  | { t: 'ping'; seq: number }
  | { t: 'quarantine'; keys: string[]; modules?: number[] }
  | { t: 'reload'; seq: number }
  | { t: 'status'; id: number }
  /** The slot the worker serves (its metrics' `worker` label), once it serves. */
  | { t: 'slot'; index: number }
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
  /** Plugin modules (by beacon tag) whose loading wedged a worker: no worker runs them again. */
  #refusedModules = new Set<number>();
  /** A reload tried in the hot spare first: the serving workers reload only once it loaded there. */
  #reloadInSpare: WorkerState | null = null;
  #admin: Server | null = null;
  #api: AdminApi | null = null;
  /** When the admin API last wrote the config: a worker that was loading then may hold the version before. */
  #apiWroteAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #pingSeq = 0;
  #stopping = false;
  #runDir: string;
  #cgroupRoot: string | null;
  /** Worker cgroup folders being removed (the kernel refuses until the dead process is reaped). */
  #cgroupDrops = new Set<Promise<void>>();
  #aggregator = new AggregatorRegistry();
  #registry = new Registry();
  #restarts: Counter<'reason'>;
  #crashLoop = new Map<number, number[]>();
  #statusSeq = 0;
  #reloads: Counter<'result'>;
  #reloadSeq = 0;
  /** Reload seq -> the round waiting for the workers' answers. */
  #reloadRounds = new Map<number, ReloadRound<WorkerState>>();
  #watcher: FileWatch | null = null;
  /** The files of the running config, as the workers last reported them. */
  #watchFiles: string[] = [];
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
    this.#reloads = new Counter({ name: 'isogate_config_reloads_total', help: 'Config reloads by result (ok, error), counted once for all workers: error if any worker rejected it.', labelNames: ['result'], registers: [this.#registry] });
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
    this.#api = supervisorAdminApi(this.options.configFile, this.options.config, this.log, () => this.#reloadForApi(), () => (this.#apiWroteAt = Date.now()));
    this.#admin = createServer((req, res) => void this.#adminRequest(req, res));
    this.#admin.on('clientError', answerClientError);
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
    const env: Record<string, string> = { ISOGATE_CONFIG: this.options.configFile, ISOGATE_BEACON: beaconFile, ISOGATE_WORKER: String(index), ISOGATE_SPARE: spare ? '1' : '0', ISOGATE_SUPERVISOR_PID: String(process.pid), ISOGATE_REFUSED_MODULES: [...this.#refusedModules].join(',') };
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
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload', seq: 0 } satisfies ToWorker); // answered to no round
        if (this.#quarantined.size > 0) w.worker.send({ t: 'quarantine', keys: [...this.#quarantined.keys()] } satisfies ToWorker);
        this.log.debug({ workerPid: m.pid, ms: Date.now() - w.startedAt }, 'hot spare loaded');
        break;
      case 'ready':
        w.ready = true;
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload', seq: 0 } satisfies ToWorker); // answered to no round
        w.unansweredSince = 0;
        if (this.#quarantined.size > 0) w.worker.send({ t: 'quarantine', keys: [...this.#quarantined.keys()] } satisfies ToWorker);
        w.worker.send({ t: 'slot', index: w.index } satisfies ToWorker);
        this.log.info({ worker: w.index, workerPid: m.pid, ms: Date.now() - w.startedAt }, 'worker ready');
        this.#resolveFirstReady();
        break;
      case 'failed':
        this.log.error(who(w), `${w.spare ? 'hot spare' : 'worker'} could not start: ${m.error}`);
        this.#rejectFirstReady(new Error(m.error));
        break;
      case 'pong':
        w.unansweredSince = 0;
        break;
      case 'sandbox':
        w.slots.set(m.slot, { tenant: m.tenant, instances: m.instances });
        break;
      case 'reloaded':
        this.#reloadRounds.get(m.seq)?.reply(w, m.ok, m.error);
        break;
      case 'watch':
        this.#watchFiles = m.files;
        this.#watcher?.set(m.files);
        break;
      case 'status': {
        const waiter = this.#statusWaiters.get(m.id);
        if (waiter !== undefined) waiter({ worker: w.index, ...m.status });
        break;
      }
    }
  }

  /** Who was running when worker `w` died: the instance its beacon names, quarantined everywhere. */
  #blame(w: WorkerState, record: BeaconRecord | null, reason: string): void {
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

  /** The worker died loading a plugin module (config compile time): no worker loads that module again. */
  #refuse(w: WorkerState, loading: { tag: number; source: string }, reason: string): void {
    if (this.#refusedModules.has(loading.tag)) return;
    this.#refusedModules.add(loading.tag);
    const instance = `module ${basename(loading.source)}`;
    this.#quarantined.set(`module:${loading.tag}`, { key: `module:${loading.tag}`, instance, tenant: '', reason, at: new Date().toISOString() });
    this.log.error({ worker: w.index, module: loading.source, reason }, 'plugin module quarantined: its worker died loading it; configs that use it are refused');
    for (const other of this.#all()) {
      if (other !== w && other.worker.isConnected()) other.worker.send({ t: 'quarantine', keys: [], modules: [loading.tag] } satisfies ToWorker);
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
    // A worker whose sentinel killed it (its main thread stayed in a call the watchdog
    // could not stop, or in a plugin module's code while loading) says so in its beacon.
    const record = readBeacon(w.beaconFile);
    const reason = w.endedBy ?? (record?.wedged === true ? 'wedged' : 'crash');
    if (record?.loading != null) this.#refuse(w, record.loading, reason);
    // A worker that dies during a reload answers it as a rejection (the hot spare dying on the new config among them).
    for (const round of this.#reloadRounds.values()) round.reply(w, false, `worker ${w.spare ? 'spare' : w.index} died (${reason}) while loading the new config`);
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
    this.#restarts.labels(reason).inc();
    this.log.error({ worker: w.index, workerPid: w.pid, code, signal, reason }, 'worker died; replacing it');
    this.#blame(w, record, reason);
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
    const { healthIntervalMs, healthTimeoutMs, startTimeoutMs, workerMemoryMb } = this.options.config.supervisor;
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
      } else if (!w.ready && !w.loaded && now - w.startedAt > startTimeoutMs) {
        // Every state has a deadline: starting (loading the config) too.
        this.#end(w, 'stuck', `still loading its config after ${now - w.startedAt} ms`);
        continue;
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
    this.log.error({ ...who(w), reason }, `killing ${w.spare ? 'hot spare' : 'worker'}: ${why}`);
    w.worker.process.kill('SIGKILL');
  }

  #cgroupFor(w: WorkerState): string | null {
    if (this.#cgroupRoot === null || w.pid === 0) return null;
    const dir = join(this.#cgroupRoot, `worker-${w.index}-${w.pid}`);
    try {
      mkdirSync(dir);
      writeMemoryBound(dir, this.options.config.supervisor.workerMemoryMb);
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
    const drop = removeCgroup(w.cgroup);
    w.cgroup = null;
    this.#cgroupDrops.add(drop);
    void drop.then(() => this.#cgroupDrops.delete(drop));
  }

  /**
   * Reloads the config: in the hot spare first, then, once it loaded there, in the serving
   * workers. A config that hangs or kills its worker while loading costs the spare only;
   * the workers keep serving the running config. Without a loaded spare, every worker
   * reloads at once. Either way the reload is reported once: the workers do not log their
   * own result, the supervisor logs one line saying who accepted or rejected it, and
   * counts it once.
   */
  reload(): void {
    const spare = this.#spare;
    if (spare !== null && spare.loaded && spare.worker.isConnected() && this.#reloadInSpare === null) {
      this.log.debug('reloading config in the hot spare first');
      this.#reloadInSpare = spare;
      this.#reloadRound(new Map([[spare, 'spare']]), (first) => {
        this.#reloadInSpare = null;
        if (first.acceptedBy.length === 0) return this.#reported(first, 'the hot spare could not load it; the workers keep the running config');
        // The new config loaded somewhere: now the serving workers take it.
        this.#reloadRound(this.#serving(), (rest) => this.#reported({ ...rest, acceptedBy: [...first.acceptedBy, ...rest.acceptedBy] }));
      });
      return;
    }
    this.log.debug('reloading config in every worker');
    this.#reloadRound(new Map([...this.#serving(), ...(spare !== null && spare.worker.isConnected() ? [[spare, 'spare'] as const] : [])]), (o) => this.#reported(o));
  }

  /**
   * An admin API change: every serving worker and the loaded spare reload the file at once
   * (the API has validated it), reported once like any reload. Resolves with the errors of
   * those that refused or did not answer.
   */
  #reloadForApi(): Promise<string[]> {
    const targets = this.#serving();
    const spare = this.#spare;
    if (spare !== null && spare.loaded && spare.worker.isConnected()) targets.set(spare, 'spare');
    return new Promise((resolve) =>
      this.#reloadRound(targets, (o) => {
        this.#reported(o);
        resolve([...o.rejected.map((r) => r.error), ...o.noAnswer.map((who) => `worker ${who} did not answer the reload`)]);
      }),
    );
  }

  #serving(): Map<WorkerState, string> {
    return new Map([...this.#workers.values()].filter((w) => w.worker.isConnected()).map((w) => [w, String(w.index)]));
  }

  #reloadRound(targets: Map<WorkerState, string>, onDone: (o: ReloadOutcome) => void): void {
    const seq = ++this.#reloadSeq;
    const round = new ReloadRound(targets, (o) => {
      this.#reloadRounds.delete(seq);
      onDone(o);
    });
    if (round.done) return;
    this.#reloadRounds.set(seq, round);
    for (const w of targets.keys()) w.worker.send({ t: 'reload', seq } satisfies ToWorker);
  }

  #reported({ acceptedBy, rejected, noAnswer }: ReloadOutcome, why = 'the running config stays'): void {
    const missing = noAnswer.length > 0 ? noAnswer : undefined;
    if (rejected.length === 0 && acceptedBy.length > 0) {
      this.#reloads.labels('ok').inc();
      this.log.info({ acceptedBy, noAnswer: missing }, 'config reloaded');
      return;
    }
    this.#reloads.labels('error').inc();
    const error = rejected[0]?.error ?? 'no worker answered';
    this.log.error({ rejectedBy: rejected.map((r) => r.who), acceptedBy, noAnswer: missing }, `config reload rejected, ${why}: ${error}`);
  }

  /** --watch: the files come from the workers (the supervisor never loads plugins). */
  #watch(): void {
    this.#watcher = new FileWatch(() => this.reload());
    this.#watcher.set([this.options.configFile, ...this.#watchFiles]);
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

  /**
   * /status: the config and counts of the workers, summed where they add up (live
   * isolates and requests in flight, as isogate_isolates summed over its `worker` label),
   * and each worker's own under workers.status.
   */
  async status(): Promise<Record<string, unknown>> {
    const workers = await this.#workerStatuses();
    const first = workers.find((w) => w.version !== undefined) ?? {};
    let counts: Record<string, unknown> | undefined;
    for (const w of workers) {
      const c = w.counts as Record<string, number> | undefined;
      if (c === undefined) continue;
      if (counts === undefined) counts = { ...c, isolates: 0, inflight: 0 };
      (counts.isolates as number) += c.isolates;
      (counts.inflight as number) += c.inflight;
    }
    return {
      name: 'isogate',
      version: first.version,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      config: first.config,
      counts,
      workers: {
        size: this.size,
        ready: this.#ready(),
        // The hot spare that takes over when a worker dies: loaded and waiting, or not yet.
        spareReady: this.#spare !== null && this.#spare.loaded,
        status: workers,
      },
      quarantined: [...this.#quarantined.values()],
    };
  }

  #ready(): number {
    let n = 0;
    for (const w of this.#workers.values()) if (w.ready && w.worker.isConnected()) n++;
    return n;
  }

  /** Why the supervisor should not get traffic (/readyz), or null: at least one worker serves. */
  #notReady(): string | null {
    if (this.#stopping) return 'stopping';
    if (this.#ready() === 0) return `no worker is serving (0 of ${this.size} ready)`;
    return null;
  }

  async #adminRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (this.#api?.owns(path) === true) return this.#api.handle(req, res);
    try {
      switch (path) {
        case '/metrics': {
          const [workers, own] = await Promise.all([this.#aggregator.clusterMetrics(), this.#registry.metrics()]);
          res.writeHead(200, { 'content-type': this.#registry.contentType });
          res.end(promText(workers, own));
          return;
        }
        case '/status':
          json(res, 200, await this.status());
          return;
        case '/healthz':
          json(res, 200, healthBody());
          return;
        case '/readyz': {
          const reason = this.#notReady();
          json(res, reason === null ? 200 : 503, readyBody(reason));
          return;
        }
      }
      json(res, 404, { error: { code: 'ISG_ERR_NO_ROUTE', message: `admin endpoints: ${ADMIN_PATHS}` } });
    } catch (err) {
      json(res, 500, { error: { code: 'ISG_ERR_INTERNAL', message: (err as Error).message } });
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
    await Promise.all(this.#cgroupDrops);
    if (this.#cgroupRoot !== null) await removeCgroup(this.#cgroupRoot);
    rmSync(this.#runDir, { recursive: true, force: true });
  }
}

/** How log lines name a worker process: its slot, or as the hot spare. */
function who(w: WorkerState): { worker?: number; spare?: true; workerPid: number } {
  return w.spare ? { spare: true, workerPid: w.pid } : { worker: w.index, workerPid: w.pid };
}

function rssMb(pid: number): number | null {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Math.round((Number(statm[1]) * 4096) / (1024 * 1024));
  } catch {
    return null;
  }
}
