import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { IsolatePool } from '../sandbox/pool.ts';
import { Watchdog } from '../sandbox/watchdog.ts';
import { beacon } from '../sandbox/beacon.ts';
import { WarmIsolates } from '../sandbox/blank.ts';
import { Prewarmer } from '../sandbox/prewarm.ts';
import { AccessLog } from './access-log.ts';
import { createAdminHandler } from './admin.ts';
import { compileConfig, type CompiledConfig } from './config/compile.ts';
import { loadConfigFile } from './config/load.ts';
import type { ConfigInput } from './config/types.ts';
import { ConfigError } from './errors.ts';
import { closeServer, createAdminServer, createProxyServer, listen, type Listen, type ProxyCounts } from './listeners.ts';
import { createLogger, type Logger } from './log.ts';
import { LogQueue } from './log-queue.ts';
import { HostServices } from '../pdk-bridge/host/services/index.ts';
import { DEFAULT_CACHE } from '../sandbox/limits.ts';
import { createCounterStores, type CounterStores } from './state/index.ts';
import { Metrics } from './metrics.ts';
import type { PipelineContext } from '../pdk-bridge/host/phase-call.ts';
import type { ProxyContext } from './proxy.ts';
import type { Snapshot, UnhealthyInstance } from './snapshot.ts';
import { SnapshotBuilder } from './snapshot-builder.ts';
import { FileWatch } from './watch.ts';
import { UpstreamPools } from './upstream.ts';
import type { WebSocketProxy } from './websocket.ts';

import { VERSION } from './version.ts';
import type { ClusterSync } from './cluster/sync.ts';

export { VERSION };

export type { Listen };

export type GatewayOptions = {
  /** Path of the YAML config file. */
  configFile: string;
  /** Override the config's listeners (tests use port 0). */
  listen?: Partial<Listen>;
  admin?: Partial<Listen> | false;
  /** Reload when the file changes. */
  watch?: boolean;
  /** Load everything but do not listen until listen() (a supervisor's hot spare). */
  deferListen?: boolean;
  logger?: Logger;
  /** Overrides the config's `log.access` (tests turn it off or point it at a file). */
  accessLog?: boolean | string;
  /** Told when stop() begins, before the proxy stops accepting (a worker tells its supervisor, which hands its slot on). */
  onStopping?: () => void;
  /** Told of every new sandbox, so a supervisor can name the plugin behind a crash beacon. */
  onSandbox?: (slot: number, tenant: string, instances: readonly { id: string; key: string }[]) => void;
  /** A cluster node (one process): its link to the config in Redis, which the admin API writes and /status reports. */
  cluster?: ClusterSync;
  /** Where pdk.counters live: 'worker' asks the supervisor (the node's store), 'local' (default) keeps them here. */
  counters?: 'worker' | 'local';
};

export type ReloadResult = { ok: true; version: number } | { ok: false; error: string; details?: readonly string[] };

/**
 * The gateway: listeners, the current config snapshot, the sandboxes and the watchdog.
 *
 * @example
 *   const gw = await Gateway.start({ configFile: 'examples/gateway.yaml' });
 *   console.log(gw.proxyAddress);   // { host, port }
 *   await gw.reload();              // { ok: true, version: 2 }
 *   await gw.stop();
 */
export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly startedAt = Date.now();
  readonly configFile: string;
  readonly cluster: ClusterSync | undefined;
  #watchdog = new Watchdog();
  // Refills wait for a moment with no request in flight (bounded): see sandbox/blank.ts.
  #warm = new WarmIsolates(2, () => this.#snapshot.inflight > 0);
  #prewarmer: Prewarmer;
  #pools = new UpstreamPools();
  #pool: IsolatePool;
  #builder: SnapshotBuilder;
  #logs: LogQueue;
  #snapshot!: Snapshot;
  #proxy: Server;
  #websockets: WebSocketProxy;
  #counts!: ProxyCounts;
  #admin: Server | null = null;
  #watcher: FileWatch | null = null;
  #accessLog: AccessLog | null;
  #reloading: Promise<ReloadResult> | null = null;
  #lastReloadError: string | null = null;
  #stopping = false;
  #ctx: ProxyContext;
  #unmatched: ReturnType<Metrics['requests']['labels']>;
  #counters: CounterStores;
  #services: HostServices;

  private constructor(options: GatewayOptions, compiled: CompiledConfig, logger: Logger, counters: CounterStores) {
    this.configFile = resolve(options.configFile);
    this.cluster = options.cluster;
    this.log = logger;
    const access = options.accessLog ?? compiled.input.log.access;
    this.#accessLog = AccessLog.open(typeof access === 'string' && access !== 'off' && !isAbsolute(access) ? join(dirname(this.configFile), access) : access);
    const input = compiled.input;
    this.#pool = new IsolatePool(input.sandbox.maxIsolates, input.sandbox.idleTimeoutMs, input.sandbox.maxTotalHeapMb);
    this.metrics = new Metrics({
      requests: () => this.#counts.requests,
      isolates: () => this.liveIsolates(),
      heapBytes: () => {
        let sum = 0;
        for (const sb of this.#pool.live()) sum += sb.heap()?.used ?? 0;
        return sum;
      },
    });
    this.#unmatched = this.metrics.requests.labels('', '', '404');
    this.metrics.onInstanceStates(() => this.unhealthyInstances());
    this.#counters = counters;
    this.#services = new HostServices(this.#counters, this.log, { cache: input.sandbox.cache ?? DEFAULT_CACHE });
    const pipeline: PipelineContext = { log: this.log, failures: this.metrics.pluginFailures, services: this.#services };
    this.#logs = new LogQueue(pipeline);
    this.#ctx = {
      ...pipeline,
      current: () => this.#snapshot,
      queueLog: this.#logs.push,
      countUnmatched: () => this.#unmatched.inc(),
      accessLog: this.#accessLog,
    };
    this.#builder = new SnapshotBuilder({
      configFile: this.configFile,
      log: this.log,
      metrics: this.metrics,
      pools: this.#pools,
      watchdog: this.#watchdog,
      isolates: this.#pool,
      warm: this.#warm,
      onSandbox: options.onSandbox,
      onCatastrophicError: (tenant, message) => this.#catastrophic(tenant, message),
    });
    this.#snapshot = this.#builder.build(compiled);
    this.#prewarmer = new Prewarmer(this.#pool, this.#warm, {
      onFailed: (tenant, message) => this.log.warn({ tenant }, `isolate pre-warm failed, its first request builds it: ${message}`),
      onDone: (built, stoppedBy) => this.log.info({ built, stoppedBy }, 'isolates pre-warmed'),
    });
    this.#prewarm(this.#snapshot);
    ({ server: this.#proxy, websockets: this.#websockets, counts: this.#counts } = createProxyServer(this.#ctx));
  }

  /** Loads the config, compiles it, and starts listening. Throws ConfigError on a bad file. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const file = resolve(options.configFile);
    const input = await loadConfigFile(file);
    const logger = options.logger ?? createLogger(input.log.level);
    const compiled = await compileConfig(input, file);
    for (const w of compiled.warnings) logger.warn(w);
    // The cluster block is the node's own (a restart changes it): its Redis counters are made once.
    const counters = await createCounterStores(
      { mode: options.counters ?? 'local', redis: input.cluster?.redis },
      { onUnready: (err) => logger.warn(`cluster counters: ${err.message}; rate limits with policy redis fail (fault_tolerant decides) until Redis answers`) },
    );
    let gw: Gateway;
    try {
      gw = new Gateway(options, compiled, logger, counters);
    } catch (err) {
      await Promise.all([counters.node.close(), counters.cluster?.close()]); // no Redis connection left behind
      throw err;
    }
    gw.#options = options;
    await beacon.ready(); // the sentinel judges CPU limits: serve only once it runs
    if (options.deferListen !== true) {
      try {
        await gw.listen();
      } catch (err) {
        // Stop the watchdog before anyone exits: isolated-vm crashes a process that exits while it runs.
        await gw.stop(0);
        throw err;
      }
    }
    if (options.watch === true) gw.#watch();
    return gw;
  }

  #options: GatewayOptions | null = null;

  /**
   * Starts the listeners (done by start() unless deferListen was set). `handle`: the
   * socket a supervisor bound for this worker, instead of the config's host and port.
   */
  async listen(handle?: object): Promise<void> {
    const options = this.#options!;
    const input = this.#snapshot.compiled.input;
    if (this.#proxy.listening) return;
    const { host, port } = { ...input.listen, ...options.listen };
    await listen(this.#proxy, handle !== undefined ? { handle } : { host, port });
    if (options.admin !== false) {
      const admin = { ...input.admin, ...options.admin };
      this.#admin = createAdminServer(createAdminHandler(this));
      await listen(this.#admin, admin);
    }
    this.log.info({ proxy: this.proxyAddress, admin: this.adminAddress, config: this.configFile, version: this.#snapshot.version }, 'isogate listening');
  }

  get proxyAddress(): Listen {
    const a = this.#proxy.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get adminAddress(): Listen | null {
    const a = this.#admin?.address() as AddressInfo | undefined;
    return a === undefined ? null : { host: a.address, port: a.port };
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Reloads the config file. The new snapshot replaces the old one atomically; requests
   * in flight finish on the old one. A file that does not load or compile is reported and
   * never replaces the running config.
   */
  reload(options: { log?: boolean } = {}): Promise<ReloadResult> {
    return this.#swap(() => loadConfigFile(this.configFile), options);
  }

  /**
   * Applies a validated config object (the admin API's change) exactly like a reload of
   * the file: compiled, swapped atomically, refused if it does not compile.
   */
  applyConfig(input: ConfigInput): Promise<ReloadResult> {
    return this.#swap(async () => input);
  }

  #swap(load: () => Promise<ConfigInput>, options: { log?: boolean } = {}): Promise<ReloadResult> {
    // A worker's supervisor reports the reload once for all its workers: theirs go to debug.
    const level = options.log === false ? 'debug' : undefined;
    const run = async (): Promise<ReloadResult> => {
      try {
        const input = await load();
        const compiled = await compileConfig(input, this.configFile);
        for (const w of compiled.warnings) this.log[level ?? 'warn'](w);
        const next = this.#builder.build(compiled);
        this.#services.configure({ cache: compiled.input.sandbox.cache ?? DEFAULT_CACHE });
        const prev = this.#snapshot;
        this.#snapshot = next;
        this.#prewarm(next);
        prev.retire(() => this.#freeUnused());
        this.#lastReloadError = null;
        this.metrics.configReloads.labels('ok').inc();
        this.log[level ?? 'info']({ version: next.version, routes: next.routes.length }, 'config reloaded');
        this.#watcher?.set(this.watchedFiles());
        return { ok: true, version: next.version };
      } catch (err) {
        const error = err instanceof ConfigError ? err.message : `reload failed: ${(err as Error).message}`;
        this.#lastReloadError = error;
        this.metrics.configReloads.labels('error').inc();
        this.log[level ?? 'error']({ version: this.#snapshot.version }, `config reload rejected, keeping version ${this.#snapshot.version}: ${error}`);
        return { ok: false, error, details: err instanceof ConfigError ? err.details : undefined };
      }
    };
    // Reloads run one at a time, in order.
    const p = (this.#reloading ?? Promise.resolve()).then(run, run);
    this.#reloading = p;
    return p;
  }

  /**
   * Keeps blank isolates ready for each heap size the config uses, and builds the first
   * `sandbox.prewarm` tenants' isolates in the background (sandbox/prewarm.ts).
   */
  #prewarm(s: Snapshot): void {
    const { prewarm, maxIsolates } = s.compiled.input.sandbox;
    this.#warm.prime(new Set([...s.sandboxes.values()].map((sb) => sb.program.memoryMb)));
    if (prewarm > 0) void this.#prewarmer.start(s.sandboxes.values(), prewarm, maxIsolates);
  }

  /** Disposes sandboxes that no snapshot in use refers to. */
  #freeUnused(): void {
    // The last requests of the old snapshot may still have their log phase queued: run it
    // now, while their sandboxes exist.
    if (this.#logs.scheduled) this.#logs.flush();
    this.#builder.freeUnused(this.#snapshot, (sb) => this.#pool.forget(sb));
  }

  /** --watch: the config file and every file of its plugins (entries and what esbuild bundled into them). */
  #watch(): void {
    this.#watcher = new FileWatch(() => void this.reload());
    this.#watcher.set(this.watchedFiles());
  }

  /** The config file and the files of its plugins, as of the running config. */
  watchedFiles(): string[] {
    return this.#snapshot.sourceFiles();
  }

  #catastrophic(tenant: string, message: string): void {
    this.log.fatal({ tenant }, `isolated-vm catastrophic error, stopping: ${message}`);
    process.exitCode = 70;
    void this.stop().finally(() => process.exit(70));
  }

  /**
   * Quarantines plugin instances by key (instance id + code hash): their requests fail
   * fast, or skip them when fail-open. Set by the supervisor after a crash; kept across
   * reloads until the plugin's code changes.
   */
  quarantine(keys: readonly string[]): void {
    this.#builder.quarantine(keys);
  }

  /** Plugin instances that are not healthy (breaker open or half-open, or quarantined). */
  unhealthyInstances(): UnhealthyInstance[] {
    return this.#snapshot.unhealthyInstances();
  }

  /** Live plugin isolates of this process: what /status counts and isogate_isolates reports. */
  liveIsolates(): number {
    let n = 0;
    for (const _ of this.#pool.live()) n++;
    return n;
  }

  /** Why this gateway should not get traffic (/readyz), or null when it serves. */
  notReady(): string | null {
    if (this.#stopping) return 'stopping';
    if (!this.#proxy.listening) return 'the proxy is not listening yet';
    return null;
  }

  /** /status body. */
  status(): Record<string, unknown> {
    const snap = this.#snapshot;
    let instances = 0;
    for (const list of snap.compiled.instances.values()) instances += list.length;
    return {
      name: 'isogate',
      version: VERSION,
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      config: { version: snap.version, file: snap.file, loadedAt: snap.loadedAt.toISOString(), lastReloadError: this.#lastReloadError },
      counts: {
        tenants: snap.compiled.input.tenants.length,
        routes: snap.routes.length,
        pluginInstances: instances,
        isolates: this.liveIsolates(),
        inflight: snap.inflight,
        requests: this.#counts.requests,
      },
      unhealthyInstances: this.unhealthyInstances(),
      ...(this.cluster === undefined ? {} : { cluster: this.cluster.status() }),
    };
  }

  /** Stops listening, lets requests in flight finish (up to `graceMs`), frees every isolate. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#options?.onStopping?.();
    this.#logs.stop();
    this.#watcher?.close();
    // Tunnels are no longer the HTTP server's connections: closed here, or close() would wait for them.
    this.#websockets.closeAll();
    const closing = [closeServer(this.#proxy, graceMs)];
    if (this.#admin !== null) closing.push(closeServer(this.#admin, 0));
    await Promise.all(closing);
    this.#logs.flush();
    // Every request has ended (its line is written in its close handler): nothing is lost.
    await this.#accessLog?.close();
    await this.#pools.close();
    await Promise.all([this.#counters.node.close(), this.#counters.cluster?.close()]);
    await this.#services.close();
    this.#prewarmer.close();
    this.#builder.disposeAll();
    this.#pool.close();
    this.#warm.close();
    // isolated-vm crashes if the process exits while the watchdog's thread runs: stop it first.
    await this.#watchdog.stop();
  }
}
