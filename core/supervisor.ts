import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBeacon } from '../sandbox/beacon.ts';
import type { ConfigInput } from './config/types.ts';
import type { Logger } from './log.ts';
import type { ClusterSync } from './cluster/sync.ts';
import { startAdmin } from './supervisor/admin.ts';
import { WorkerCgroups } from './supervisor/cgroups.ts';
import { HealthCheck } from './supervisor/health.ts';
import { SupervisorMetrics } from './supervisor/metrics.ts';
import { Quarantine } from './supervisor/quarantine.ts';
import { Reloads } from './supervisor/reload.ts';
import { ProxySockets } from './supervisor/sockets.ts';
import { WorkerAsks } from './supervisor/asks.ts';
import { namedStatus, supervisorStatus } from './supervisor/status.ts';
import { who, type ToSupervisor, type ToWorker, type WorkerState } from './supervisor/types.ts';
import { WorkerSlots } from './supervisor/slots.ts';
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
 * worker processes, each listening and accepting on its slot's socket (which process
 * holds which slot, and the hot spare: core/supervisor/slots.ts), pings them, replaces
 * one that dies or stops answering, bounds their memory, reads the crash beacon of a dead worker to name
 * the plugin instance that was running and quarantines it in every worker, and serves the
 * admin API (/metrics aggregated over workers, /status) for all.
 */
export class Supervisor {
  readonly log: Logger;
  readonly options: SupervisorOptions;
  readonly size: number;
  readonly startedAt = Date.now();
  #slots: WorkerSlots;
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
  #asks = new WorkerAsks();
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
    const all = () => this.#slots.all();
    this.#quarantine = new Quarantine(this.log, all);
    this.#slots = new WorkerSlots(this.size, {
      configFile: options.configFile,
      runDir: this.#runDir,
      log: this.log,
      cgroups: this.#cgroups,
      quarantine: this.#quarantine,
      stopping: () => this.#stopping,
      message: (w, m) => this.#message(w, m),
      exited: (w, code, signal) => this.#exited(w, code, signal),
    });
    this.#health = new HealthCheck(options.config.supervisor, this.log, all);
    this.#metrics = new SupervisorMetrics(this.#asks, () => this.#slots.ready(), () => this.#slots.markedReady(), () => this.#quarantine.values());
    this.#reloads = new Reloads(this.log, this.#metrics.reloads, { serving: () => this.#slots.serving(), spare: () => this.#slots.spare });
    this.#firstReady = new Promise((res, rej) => {
      this.#resolveFirstReady = res;
      this.#rejectFirstReady = rej;
    });
  }

  /** Binds the proxy port, forks the workers and starts the admin listener; resolves once a worker serves. */
  async start(): Promise<void> {
    const { listen } = this.options.config;
    this.#sockets = await ProxySockets.open({ ...listen, port: this.options.port ?? listen.port }, this.size);
    this.#slots.start(this.#sockets);
    const { healthIntervalMs } = this.options.config.supervisor;
    this.#timer = setInterval(() => this.#health.tick(), healthIntervalMs);
    await this.#firstReady;
    this.#admin = await startAdmin({
      configFile: this.options.configFile,
      config: this.options.config,
      log: this.log,
      cluster: this.options.cluster,
      // Admin API changes are taken by every serving worker and the loaded spare before they answer.
      reloadAll: () => this.#reloads.forApi(),
      wrote: () => (this.#apiWroteAt = Date.now()),
      metrics: this.#metrics,
      status: () => this.status(),
      notReady: () => this.#notReady(),
    });
    if (this.options.watch === true) this.#watch();
    this.log.info({ workers: this.size, proxyPort: this.#sockets.port, listener: this.#sockets.mode, admin: this.#admin.address(), cgroups: this.#cgroups.root !== null }, 'isogate supervisor up');
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
        this.#slots.retiring(w);
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
        this.#asks.answer(m.id, namedStatus(w, m.status));
        break;
      case 'metrics':
        this.#asks.answer(m.id, m.metrics);
        break;
    }
  }

  #exited(w: WorkerState, code: number | null, signal: string | null): void {
    this.#slots.gone(w);
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
      this.#slots.spareDied(w, code !== 78);
      return;
    }
    if (code === 78) {
      // The config cannot start: retrying would only loop.
      if (this.#slots.markedReady() === 0) this.#rejectFirstReady(new Error('worker could not load the config'));
      this.log.error({ worker: w.index }, 'worker exited: config cannot start; not restarting it');
      this.#slots.release(w);
      return;
    }
    this.#metrics.restarts.labels(reason).inc();
    this.log.error({ worker: w.index, workerPid: w.pid, code, signal, reason }, 'worker died; replacing it');
    this.#quarantine.blame(w, record, reason);
    if (!w.vacated) this.#slots.vacate(w);
  }

  /** Reloads the config in the hot spare first, then the serving workers (see Reloads.reload). */
  reload(): void {
    this.#reloads.reload();
  }

  /** --watch: the files come from the workers (the supervisor never loads plugins). */
  #watch(): void {
    this.#watcher = new FileWatch(() => this.reload());
    this.#watcher.set([this.options.configFile, ...this.#watchFiles]);
  }

  /** /status: the serving workers' config and counts, summed, each one's own and the hot spare's (see supervisorStatus). */
  status(): Promise<Record<string, unknown>> {
    return supervisorStatus({
      asks: this.#asks,
      slots: this.#slots,
      startedAt: this.startedAt,
      listener: this.#sockets?.mode,
      quarantined: () => this.#quarantine.values(),
      cluster: this.options.cluster,
    });
  }

  /** Why the supervisor should not get traffic (/readyz), or null: at least one worker serves. */
  #notReady(): string | null {
    if (this.#stopping) return 'stopping';
    if (this.#slots.ready().length === 0) return `no worker is serving (0 of ${this.size} ready)`;
    return null;
  }

  /** Stops every worker (they stop accepting, then drain), then the admin listener. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    // Our hold first: each socket then closes as its worker stops accepting, and none is left listening with nobody to accept.
    this.#sockets?.close();
    await this.#slots.stop();
    await new Promise<void>((r) => (this.#admin === null ? r() : this.#admin.close(() => r())));
    for (const w of this.#slots.all()) this.#cgroups.drop(w);
    await this.#cgroups.close();
    rmSync(this.#runDir, { recursive: true, force: true });
  }
}
