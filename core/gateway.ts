import { dirname, isAbsolute, join, resolve } from 'node:path';
import { beacon } from '../sandbox/beacon.ts';
import { AccessLog } from './access-log.ts';
import { createAdminHandler } from './admin.ts';
import { compileConfig, type CompiledConfig } from './config/compile.ts';
import { loadConfigFile } from './config/load.ts';
import type { ConfigInput } from './config/types.ts';
import type { Listen } from './listeners.ts';
import { createLogger, type Logger } from './log.ts';
import { LogQueue } from './log-queue.ts';
import { HostServices } from '../pdk-bridge/host/services/index.ts';
import { DEFAULT_CACHE } from '../sandbox/limits.ts';
import { createCounterStores, type CounterStores } from './state/index.ts';
import { Metrics } from './metrics.ts';
import type { PipelineContext } from '../pdk-bridge/host/phase-call.ts';
import type { ProxyContext } from './proxy.ts';
import type { Snapshot, UnhealthyInstance } from './snapshot.ts';
import { FileWatch } from './watch.ts';
import { UpstreamPools } from './upstream.ts';

import { VERSION } from './version.ts';
import type { ClusterSync } from './cluster/sync.ts';
import { ConfigSwap, type ReloadResult } from './gateway/config-swap.ts';
import { GatewaySandboxes } from './gateway/sandboxes.ts';
import { GatewayServers } from './gateway/servers.ts';
import { gatewayStatus } from './gateway/status.ts';

export { VERSION };

export type { Listen, ReloadResult };

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

/**
 * The gateway: its HTTP servers (core/gateway/servers.ts), the running config snapshot
 * and its swaps (core/gateway/config-swap.ts), the plugin sandboxes with the watchdog
 * (core/gateway/sandboxes.ts), and what they share: host services, counters, upstream
 * pools, the log phase queue and the access log.
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
  #pools = new UpstreamPools();
  #sandboxes: GatewaySandboxes;
  #logs: LogQueue;
  #config: ConfigSwap;
  #servers: GatewayServers;
  #watcher: FileWatch | null = null;
  #accessLog: AccessLog | null;
  #stopping = false;
  #options: GatewayOptions;
  #ctx: ProxyContext;
  #unmatched: ReturnType<Metrics['requests']['labels']>;
  #counters: CounterStores;
  #services: HostServices;

  private constructor(options: GatewayOptions, compiled: CompiledConfig, logger: Logger, counters: CounterStores) {
    this.#options = options;
    this.configFile = resolve(options.configFile);
    this.cluster = options.cluster;
    this.log = logger;
    const access = options.accessLog ?? compiled.input.log.access;
    this.#accessLog = AccessLog.open(typeof access === 'string' && access !== 'off' && !isAbsolute(access) ? join(dirname(this.configFile), access) : access, compiled.input.log.accessBacklogMb * 1024 * 1024);
    const input = compiled.input;
    this.metrics = new Metrics({
      requests: () => this.#servers.counts.requests,
      isolates: () => this.liveIsolates(),
      heapBytes: () => this.#sandboxes.heapBytes(),
    });
    this.#unmatched = this.metrics.requests.labels('', '', '404');
    this.metrics.onInstanceStates(() => this.unhealthyInstances());
    this.#counters = counters;
    this.#services = new HostServices(this.#counters, this.log, { cache: input.sandbox.cache ?? DEFAULT_CACHE });
    const pipeline: PipelineContext = { log: this.log, failures: this.metrics.pluginFailures, services: this.#services };
    this.#logs = new LogQueue(pipeline);
    this.#ctx = {
      ...pipeline,
      current: () => this.#config.current,
      queueLog: this.#logs.push,
      countUnmatched: () => this.#unmatched.inc(),
      accessLog: this.#accessLog,
    };
    this.#sandboxes = new GatewaySandboxes(input.sandbox, {
      configFile: this.configFile,
      log: this.log,
      metrics: this.metrics,
      pools: this.#pools,
      onSandbox: options.onSandbox,
      onCatastrophicError: (tenant, message) => this.#catastrophic(tenant, message),
    });
    this.#config = new ConfigSwap(
      {
        configFile: this.configFile,
        log: this.log,
        metrics: this.metrics,
        sandboxes: this.#sandboxes,
        applying: (next) => this.#services.configure({ cache: next.input.sandbox.cache ?? DEFAULT_CACHE }),
        retired: () => this.#freeUnused(),
        swapped: () => this.#watcher?.set(this.watchedFiles()),
      },
      this.#sandboxes.build(compiled),
    );
    this.#servers = new GatewayServers(this.#ctx);
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

  /**
   * Starts the listeners (done by start() unless deferListen was set). `handle`: the
   * socket a supervisor bound for this worker, instead of the config's host and port.
   */
  async listen(handle?: object): Promise<void> {
    const options = this.#options;
    const input = this.#config.current.compiled.input;
    if (this.#servers.listening) return;
    const { host, port } = { ...input.listen, ...options.listen };
    const admin = options.admin === false ? null : { at: { ...input.admin, ...options.admin }, handler: () => createAdminHandler(this) };
    await this.#servers.listen(handle !== undefined ? { handle } : { host, port }, admin);
    this.log.info({ proxy: this.proxyAddress, admin: this.adminAddress, config: this.configFile, version: this.#config.current.version }, 'isogate listening');
  }

  get proxyAddress(): Listen {
    return this.#servers.proxyAddress;
  }

  get adminAddress(): Listen | null {
    return this.#servers.adminAddress;
  }

  get snapshot(): Snapshot {
    return this.#config.current;
  }

  /**
   * Reloads the config file. The new snapshot replaces the old one atomically; requests
   * in flight finish on the old one. A file that does not load or compile is reported and
   * never replaces the running config.
   */
  reload(options: { log?: boolean } = {}): Promise<ReloadResult> {
    return this.#config.swap(() => loadConfigFile(this.configFile), options);
  }

  /**
   * Applies a validated config object (the admin API's change) exactly like a reload of
   * the file: compiled, swapped atomically, refused if it does not compile.
   */
  applyConfig(input: ConfigInput): Promise<ReloadResult> {
    return this.#config.swap(async () => input);
  }

  /** Disposes sandboxes that no snapshot in use refers to. */
  #freeUnused(): void {
    // The last requests of the old snapshot may still have their log phase queued: run it
    // now, while their sandboxes exist.
    if (this.#logs.scheduled) this.#logs.flush();
    this.#sandboxes.freeUnused(this.#config.current);
  }

  /** --watch: the config file and every file of its plugins (entries and what esbuild bundled into them). */
  #watch(): void {
    this.#watcher = new FileWatch(() => void this.reload());
    this.#watcher.set(this.watchedFiles());
  }

  /** The config file and the files of its plugins, as of the running config. */
  watchedFiles(): string[] {
    return this.#config.current.sourceFiles();
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
    this.#sandboxes.quarantine(keys);
  }

  /** Plugin instances that are not healthy (breaker open or half-open, or quarantined). */
  unhealthyInstances(): UnhealthyInstance[] {
    return this.#config.current.unhealthyInstances();
  }

  /** Live plugin isolates of this process: what /status counts and isogate_isolates reports. */
  liveIsolates(): number {
    return this.#sandboxes.live();
  }

  /** Why this gateway should not get traffic (/readyz), or null when it serves. */
  notReady(): string | null {
    if (this.#stopping) return 'stopping';
    if (!this.#servers.listening) return 'the proxy is not listening yet';
    return null;
  }

  /** /status body. */
  status(): Record<string, unknown> {
    return gatewayStatus({
      snapshot: this.#config.current,
      lastReloadError: this.#config.lastError,
      startedAt: this.startedAt,
      isolates: this.liveIsolates(),
      requests: this.#servers.counts.requests,
      unhealthyInstances: this.unhealthyInstances(),
      cluster: this.cluster,
    });
  }

  /** Stops listening, lets requests in flight finish (up to `graceMs`), frees every isolate. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#options.onStopping?.();
    this.#logs.stop();
    this.#watcher?.close();
    await this.#servers.close(graceMs);
    this.#logs.flush();
    // Every request has ended (its line is written in its close handler): nothing is lost.
    await this.#accessLog?.close();
    await this.#pools.close();
    await Promise.all([this.#counters.node.close(), this.#counters.cluster?.close()]);
    await this.#services.close();
    // isolated-vm crashes if the process exits while the watchdog's thread runs: stopped last, awaited.
    await this.#sandboxes.close();
  }
}
