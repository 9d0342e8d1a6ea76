import cluster from 'node:cluster';
import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBeacon, resetBeacon } from '../sandbox/beacon.ts';
import type { ConfigInput } from './config/types.ts';
import type { Logger } from './log.ts';
import { promText } from './metrics.ts';
import { clusterAdminApi, supervisorAdminApi } from './admin-api/index.ts';
import { supervisorCommitter } from './admin-api/commit.ts';
import type { ClusterSync } from './cluster/sync.ts';
import { listenAdmin } from './supervisor/admin.ts';
import { WorkerCgroups } from './supervisor/cgroups.ts';
import { CrashLoop, HealthCheck } from './supervisor/health.ts';
import { SupervisorMetrics } from './supervisor/metrics.ts';
import { Quarantine } from './supervisor/quarantine.ts';
import { Reloads } from './supervisor/reload.ts';
import { ProxySockets } from './supervisor/sockets.ts';
import { StatusRequests, summed } from './supervisor/status.ts';
import { who, type ToSupervisor, type ToWorker, type WorkerState } from './supervisor/types.ts';
import { FileWatch } from './watch.ts';
import { answerCounters } from './state/ipc-counters.ts';
import { LocalCounterStore } from './state/local-counters.ts';

export type { ToSupervisor, ToWorker } from './supervisor/types.ts';

export type SupervisorOptions = {
  configFile: string;
  config: ConfigInput;
  /** Overrides config.workers. */
  workers?: number | 'auto';
  log: Logger;
  watch?: boolean;
  /** Overrides config.listen.port (0: one free port, for every worker). */
  port?: number;
  /** A cluster node: the supervisor is its one Redis client for config; configFile is then the cluster file the workers load. */
  cluster?: ClusterSync;
};

/**
 * The supervisor: never runs plugin code, never accepts a connection. It binds the proxy
 * port (one SO_REUSEPORT socket per worker slot, core/supervisor/sockets.ts), forks N
 * worker processes, each listening and accepting on its slot's socket, pings them, replaces one that dies
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
  /** Workers draining to exit, their slot already handed on. */
  #retiring = new Set<WorkerState>();
  #spareSeq = 1000;
  #quarantine: Quarantine;
  #admin: Server | null = null;
  #sockets: ProxySockets | null = null;
  /** When the admin API last wrote the config: a worker that was loading then may hold the version before. */
  #apiWroteAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #health: HealthCheck;
  #stopping = false;
  #runDir: string;
  #cgroups: WorkerCgroups;
  #metrics: SupervisorMetrics;
  #crashLoop = new CrashLoop();
  #statuses = new StatusRequests();
  /** pdk.counters of the whole node: the workers ask (core/state/ipc-counters.ts). */
  #counters = new LocalCounterStore();
  #reloads: Reloads;
  #watcher: FileWatch | null = null;
  /** The files of the running config, as the workers last reported them. */
  #watchFiles: string[] = [];
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
    this.#cgroups = new WorkerCgroups(process.pid, options.config.supervisor.workerMemoryMb, this.log);
    const all = () => this.#all();
    this.#quarantine = new Quarantine(this.log, all);
    this.#health = new HealthCheck(options.config.supervisor, this.log, all);
    this.#metrics = new SupervisorMetrics(() => [...this.#workers.values()].filter((w) => w.ready).length, () => this.#quarantine.values());
    this.#reloads = new Reloads(this.log, this.#metrics.reloads, { serving: () => this.#serving(), spare: () => this.#spare });
    this.#firstReady = new Promise((res, rej) => {
      this.#resolveFirstReady = res;
      this.#rejectFirstReady = rej;
    });
  }

  /** Binds the proxy port, forks the workers and starts the admin listener; resolves once a worker serves. */
  async start(): Promise<void> {
    const { listen } = this.options.config;
    this.#sockets = await ProxySockets.open({ ...listen, port: this.options.port ?? listen.port }, this.size);
    cluster.setupPrimary({ exec: join(import.meta.dirname, 'worker.ts'), execArgv: ['--no-node-snapshot'], silent: false });
    for (let i = 0; i < this.size; i++) this.#fork(i, false);
    this.#fork(this.#spareSeq++, true);
    const { healthIntervalMs } = this.options.config.supervisor;
    this.#timer = setInterval(() => this.#health.tick(), healthIntervalMs);
    await this.#firstReady;
    const admin = this.options.config.admin;
    // Admin API changes are taken by every serving worker and the loaded spare before they answer.
    const reloadAll = () => this.#reloads.forApi();
    const wrote = () => (this.#apiWroteAt = Date.now());
    const sync = this.options.cluster;
    // A cluster node: new versions from Redis, and the API's changes, go through the same round as the API's on one node.
    sync?.start(supervisorCommitter(this.options.configFile, reloadAll, wrote));
    const api = sync !== undefined ? clusterAdminApi(sync, this.options.config, this.log) : supervisorAdminApi(this.options.configFile, this.options.config, this.log, reloadAll, wrote);
    const degraded = sync === undefined ? undefined : () => sync.degraded();
    const own = this.#metrics;
    const metrics = sync === undefined ? own : { contentType: own.contentType, text: async () => promText(await own.text(), await sync.metrics.metrics()) };
    this.#admin = await listenAdmin({ api, metrics, status: () => this.status(), notReady: () => this.#notReady(), degraded }, admin.host, admin.port);
    if (this.options.watch === true) this.#watch();
    this.log.info({ workers: this.size, proxyPort: this.#sockets.port, listener: this.#sockets.mode, admin: this.#admin.address(), cgroups: this.#cgroups.root !== null }, 'isogate supervisor up');
  }

  #fork(index: number, spare: boolean): void {
    const beaconFile = join(this.#runDir, `beacon-${index}`);
    resetBeacon(beaconFile);
    const env: Record<string, string> = { ISOGATE_CONFIG: this.options.configFile, ISOGATE_BEACON: beaconFile, ISOGATE_WORKER: String(index), ISOGATE_SPARE: spare ? '1' : '0', ISOGATE_SUPERVISOR_PID: String(process.pid), ISOGATE_REFUSED_MODULES: this.#quarantine.refusedModulesEnv() };
    const worker = cluster.fork(env);
    const state: WorkerState = {
      worker, index, beaconFile, pid: worker.process.pid ?? 0, ready: false, startedAt: Date.now(), unansweredSince: 0,
      slots: new Map(), cgroup: null, endedBy: null, spare, loaded: false, vacated: false,
    };
    state.cgroup = this.#cgroups.attach(state);
    if (spare) this.#spare = state;
    else this.#workers.set(index, state);
    worker.on('message', (m: ToSupervisor) => this.#message(state, m));
    worker.on('exit', (code, signal) => this.#exited(state, code, signal));
    // A serving worker gets its slot's socket now and listens once loaded; a spare only when it takes a slot.
    if (!spare) this.#activate(state);
  }

  #activate(w: WorkerState): void {
    w.worker.send({ t: 'activate' } satisfies ToWorker, this.#sockets!.of(w.index) as never);
  }

  #message(w: WorkerState, m: ToSupervisor): void {
    switch (m.t) {
      case 'spare':
        w.loaded = true;
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload', seq: 0 } satisfies ToWorker); // answered to no round
        this.#quarantine.tell(w);
        this.log.debug({ workerPid: m.pid, ms: Date.now() - w.startedAt }, 'hot spare loaded');
        break;
      case 'ready':
        w.ready = true;
        if (w.startedAt <= this.#apiWroteAt) w.worker.send({ t: 'reload', seq: 0 } satisfies ToWorker); // answered to no round
        w.unansweredSince = 0;
        this.#quarantine.tell(w);
        w.worker.send({ t: 'slot', index: w.index } satisfies ToWorker);
        this.log.info({ worker: w.index, workerPid: m.pid, ms: Date.now() - w.startedAt }, 'worker ready');
        this.#resolveFirstReady();
        break;
      case 'failed':
        this.log.error(who(w), `${w.spare ? 'hot spare' : 'worker'} could not start: ${m.error}`);
        this.#rejectFirstReady(new Error(m.error));
        break;
      case 'retiring':
        // It stops accepting next: the slot's socket goes to the spare now, not once it has drained.
        if (!this.#stopping && !w.spare && this.#workers.get(w.index) === w) {
          this.#retiring.add(w);
          this.#workers.delete(w.index);
          this.log.info(who(w), 'worker retiring; handing its slot on');
          this.#vacate(w);
        }
        break;
      case 'pong':
        w.unansweredSince = 0;
        break;
      case 'sandbox':
        w.slots.set(m.slot, { tenant: m.tenant, instances: m.instances });
        break;
      case 'reloaded':
        this.#reloads.reply(w, m.seq, m.ok, m.error);
        break;
      case 'counters':
        answerCounters(this.#counters, m, (r) => {
          if (w.worker.isConnected()) w.worker.send(r satisfies ToWorker);
        });
        break;
      case 'watch':
        this.#watchFiles = m.files;
        this.#watcher?.set(m.files);
        break;
      case 'status':
        this.#statuses.answer(w, m.id, m.status);
        break;
    }
  }

  #all(): WorkerState[] {
    const all = [...this.#workers.values(), ...this.#retiring];
    if (this.#spare !== null) all.push(this.#spare);
    return all;
  }

  #exited(w: WorkerState, code: number | null, signal: string | null): void {
    if (this.#workers.get(w.index) === w) this.#workers.delete(w.index);
    this.#retiring.delete(w);
    this.#cgroups.drop(w);
    if (this.#stopping) return;
    // A worker whose sentinel killed it (its main thread stayed in a call the watchdog
    // could not stop, or in a plugin module's code while loading) says so in its beacon.
    const record = readBeacon(w.beaconFile);
    const reason = w.endedBy ?? (record?.wedged === true ? 'wedged' : 'crash');
    if (record?.loading != null) this.#quarantine.refuse(w, record.loading, reason);
    this.#reloads.died(w, reason);
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
      if (!w.vacated) this.#sockets?.release(w.index); // its share of connections goes to the others
      return;
    }
    this.#metrics.restarts.labels(reason).inc();
    this.log.error({ worker: w.index, workerPid: w.pid, code, signal, reason }, 'worker died; replacing it');
    this.#quarantine.blame(w, record, reason);
    if (!w.vacated) this.#vacate(w);
  }

  /**
   * Worker `w` no longer serves its slot (it died, or is draining to exit). The slot's
   * socket stays open here, so what the kernel queued on it waits for the next worker: the
   * hot spare at once (a new spare loads in the background), or a new worker; while that
   * one starts, if other workers serve, the slot gets a fresh socket (ProxySockets.renew)
   * so that its share of new connections goes to them instead of waiting.
   */
  #vacate(w: WorkerState): void {
    w.vacated = true;
    const delay = this.#crashLoop.died(w.index);
    const spare = this.#spare;
    if (spare !== null && spare.loaded && spare.worker.isConnected()) {
      this.#spare = null;
      spare.spare = false;
      spare.index = w.index;
      spare.startedAt = Date.now();
      this.#workers.set(w.index, spare);
      this.#activate(spare);
      this.#fork(this.#spareSeq++, true);
      return;
    }
    if (this.#ready() > 0) {
      try {
        this.#sockets?.renew(w.index);
      } catch (err) {
        this.log.error({ worker: w.index, err: (err as Error).message }, 'could not bind a new proxy socket for the slot; its connections wait for its next worker');
      }
    }
    setTimeout(() => {
      if (!this.#stopping) this.#fork(w.index, false);
    }, delay).unref();
  }

  /** Reloads the config in the hot spare first, then the serving workers (see Reloads.reload). */
  reload(): void {
    this.#reloads.reload();
  }

  #serving(): Map<WorkerState, string> {
    return new Map([...this.#workers.values()].filter((w) => w.worker.isConnected()).map((w) => [w, String(w.index)]));
  }

  /** --watch: the files come from the workers (the supervisor never loads plugins). */
  #watch(): void {
    this.#watcher = new FileWatch(() => this.reload());
    this.#watcher.set([this.options.configFile, ...this.#watchFiles]);
  }

  /**
   * /status: the config and counts of the serving workers, summed where they add up (live
   * isolates, requests in flight and received, as isogate_isolates summed over its `worker`
   * label), each serving worker's own under workers.status (its pid, state and
   * counts.requests: how the kernel spread the connections), and the hot spare's.
   */
  async status(): Promise<Record<string, unknown>> {
    const spare = this.#spare !== null && this.#spare.loaded && this.#spare.worker.isConnected() ? this.#spare : null;
    const asked = [...this.#workers.values()].filter((w) => w.ready && w.worker.isConnected());
    const workers = await this.#statuses.ask(spare === null ? asked : [...asked, spare]);
    const spareStatus = spare === null ? null : workers.pop()!;
    const { version, config, counts } = summed(workers);
    return {
      name: 'isogate',
      version,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      config,
      counts,
      workers: {
        size: this.size,
        ready: this.#ready(),
        // The hot spare that takes over when a worker dies: loaded and waiting, or not yet.
        spareReady: this.#spare !== null && this.#spare.loaded,
        listener: this.#sockets?.mode,
        status: workers,
        spare: spareStatus,
      },
      quarantined: this.#quarantine.values(),
      ...(this.options.cluster === undefined ? {} : { cluster: this.options.cluster.status() }),
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

  /** Stops every worker (they stop accepting, then drain), then the admin listener. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    // Our hold first: each socket then closes as its worker stops accepting, and none is left listening with nobody to accept.
    this.#sockets?.close();
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
    for (const w of this.#all()) this.#cgroups.drop(w);
    await this.#cgroups.close();
    rmSync(this.#runDir, { recursive: true, force: true });
  }
}
