import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PHASE, PHASE_NAME } from '../pdk-bridge/host/phases.ts';
import { IsolatePool } from '../sandbox/pool.ts';
import { TenantSandbox } from '../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../sandbox/watchdog.ts';
import { beacon } from '../sandbox/beacon.ts';
import { WarmIsolates } from '../sandbox/blank.ts';
import { AccessLog } from './access-log.ts';
import { createAdminHandler } from './admin.ts';
import { compileConfig, type CompiledConfig } from './config/compile.ts';
import { loadConfigFile } from './config/load.ts';
import type { ConfigInput } from './config/types.ts';
import { ConfigError } from './errors.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { logSinkFor, recordFault } from './pipeline.ts';
import { createRequestHandler, type ProxyContext } from './proxy.ts';
import { answerClientError } from './request-checks.ts';
import { REQUEST_PHASES, type RuntimeRoute } from './route.ts';
import { PrefixRouter } from './router/router.ts';
import { Snapshot } from './snapshot.ts';
import { FileWatch } from './watch.ts';
import { UpstreamPools } from './upstream.ts';
import { WebSocketProxy, isWebSocketUpgrade } from './websocket.ts';
import { LOG_ONLY_TARGET, applyOps } from '../pdk-bridge/host/ops.ts';

import { VERSION } from './version.ts';

export { VERSION };

export type Listen = { host: string; port: number };

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
  /** Told of every new sandbox, so a supervisor can name the plugin behind a crash beacon. */
  onSandbox?: (slot: number, tenant: string, instances: readonly { id: string; key: string }[]) => void;
};

export type ReloadResult = { ok: true; version: number } | { ok: false; error: string; details?: readonly string[] };

const LOG_BATCH_MAX = 256;

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
  #watchdog = new Watchdog();
  #warm = new WarmIsolates(2);
  #pools = new UpstreamPools();
  #pool: IsolatePool;
  #sandboxes = new Map<string, TenantSandbox>();
  #snapshot!: Snapshot;
  #version = 0;
  #proxy: Server;
  #websockets: WebSocketProxy;
  #admin: Server | null = null;
  #watcher: FileWatch | null = null;
  #accessLog: AccessLog | null;
  #reloading: Promise<ReloadResult> | null = null;
  #lastReloadError: string | null = null;
  #logQueue = new Map<TenantSandbox, { route: RuntimeRoute; item: [number, string, string, string] }[]>();
  #logFlushScheduled = false;
  #stopping = false;
  #onSandbox: GatewayOptions['onSandbox'];
  /** Quarantine keys (instance id + code hash) set by the supervisor. */
  #quarantined = new Set<string>();
  #ctx: ProxyContext;
  #unmatched: ReturnType<Metrics['requests']['labels']>;

  private constructor(options: GatewayOptions, compiled: CompiledConfig, logger: Logger) {
    this.configFile = resolve(options.configFile);
    this.log = logger;
    const access = options.accessLog ?? compiled.input.log.access;
    this.#accessLog = AccessLog.open(typeof access === 'string' && access !== 'off' && !isAbsolute(access) ? join(dirname(this.configFile), access) : access);
    this.#onSandbox = options.onSandbox;
    const input = compiled.input;
    this.#pool = new IsolatePool(input.sandbox.maxIsolates, input.sandbox.idleTimeoutMs, input.sandbox.maxTotalHeapMb);
    this.metrics = new Metrics({
      isolates: () => this.liveIsolates(),
      heapBytes: () => {
        let sum = 0;
        for (const sb of this.#pool.live()) sum += sb.heap()?.used ?? 0;
        return sum;
      },
    });
    this.#unmatched = this.metrics.requests.labels('', '', '404');
    this.metrics.onInstanceStates(() => this.unhealthyInstances());
    this.#ctx = {
      log: this.log,
      pool: this.#pool,
      failures: this.metrics.pluginFailures,
      current: () => this.#snapshot,
      queueLog: (route, reqJson, phaseJson, ctx) => this.#queueLog(route, reqJson, phaseJson, ctx),
      countUnmatched: () => this.#unmatched.inc(),
      accessLog: this.#accessLog,
    };
    this.#snapshot = this.#build(compiled);
    const handler = createRequestHandler(this.#ctx);
    // requireHostHeader: false, so that a request without Host gets our JSON 400 (core/request-checks.ts), not node's empty one.
    // Only WebSocket upgrades leave the request path; any other Upgrade is proxied without it.
    this.#proxy = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0, requireHostHeader: false, shouldUpgradeCallback: isWebSocketUpgrade }, (req, res) => {
      handler(req, res);
    });
    this.#websockets = new WebSocketProxy(this.#ctx);
    this.#proxy.on('upgrade', this.#websockets.handle);
    // Malformed requests get a JSON 4xx and never reach the handler.
    this.#proxy.on('clientError', answerClientError);
  }

  /** Loads the config, compiles it, and starts listening. Throws ConfigError on a bad file. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const file = resolve(options.configFile);
    const input = await loadConfigFile(file);
    const logger = options.logger ?? createLogger(input.log.level);
    const compiled = await compileConfig(input, file);
    const gw = new Gateway(options, compiled, logger);
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

  /** Starts the listeners (done by start() unless deferListen was set). */
  async listen(): Promise<void> {
    const options = this.#options!;
    const input = this.#snapshot.compiled.input;
    if (this.#proxy.listening) return;
    const proxy = { ...input.listen, ...options.listen };
    await listen(this.#proxy, proxy);
    if (options.admin !== false) {
      const admin = { ...input.admin, ...options.admin };
      this.#admin = createServer(createAdminHandler(this));
      this.#admin.on('clientError', answerClientError);
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

  #build(compiled: CompiledConfig): Snapshot {
    const version = ++this.#version;
    const sandboxes = new Map<string, TenantSandbox>();
    for (const [tenant, program] of compiled.programs) {
      if (program.chains.length === 0) continue;
      const key = `${tenant}\0${program.key}`;
      let sb = this.#sandboxes.get(key);
      if (sb === undefined) {
        sb = new TenantSandbox(program, this.#watchdog, {
          onIsolateCreated: (t, ms) => {
            this.metrics.isolateCreated.labels(t).inc();
            this.metrics.coldStart.observe(ms / 1000);
            this.log.debug({ tenant: t, ms: Number(ms.toFixed(2)) }, 'isolate created');
          },
          onIsolateDisposed: (t, reason) => this.log.debug({ tenant: t, reason }, 'isolate disposed'),
          onCatastrophicError: (t, message) => this.#catastrophic(t, message),
          warm: this.#warm,
        });
        this.#sandboxes.set(key, sb);
        program.instances.forEach((inst, idx) => {
          if (this.#quarantined.has(inst.quarantineKey)) sb!.gate.quarantine(idx);
        });
        this.#onSandbox?.(sb.slot, tenant, program.instances.map((i) => ({ id: i.id, key: i.quarantineKey })));
      }
      sandboxes.set(tenant, sb);
    }
    const routes: RuntimeRoute[] = compiled.routes.map((spec) => {
      const sandbox = spec.chainId >= 0 ? sandboxes.get(spec.tenant) ?? null : null;
      const instances = compiled.instances.get(spec.tenant) ?? [];
      const program = compiled.programs.get(spec.tenant);
      const chain = spec.chainId >= 0 && program !== undefined ? program.chains[spec.chainId] : {};
      const phases = new Map<number, ReturnType<Metrics['pluginDuration']['labels']>>();
      const logSinks = new Map<number, ReturnType<typeof logSinkFor>>();
      for (const bit of Object.values(PHASE)) {
        const list = chain[bit];
        if (list === undefined) continue;
        const label = [...new Set(list.map((i) => instances[i].name))].join('+');
        phases.set(bit, this.metrics.pluginDuration.labels(spec.tenant, label, PHASE_NAME[bit]));
        logSinks.set(bit, logSinkFor(this.log, { tenant: spec.tenant, instances }, bit));
      }
      const statusChildren = new Map<number, ReturnType<Metrics['requests']['labels']>>();
      const requests = this.metrics.requests;
      return {
        ...spec,
        pool: this.#pools.get(spec.service.origin, spec.service.connectTimeoutMs),
        sandbox,
        instances,
        runsAccess: sandbox !== null && (spec.phases & REQUEST_PHASES) !== 0,
        runsHeaderFilter: sandbox !== null && (spec.phases & PHASE.HEADER_FILTER) !== 0,
        runsBodyFilter: sandbox !== null && (spec.phases & PHASE.BODY_FILTER) !== 0,
        runsLog: sandbox !== null && (spec.phases & PHASE.LOG) !== 0,
        logSinks,
        metrics: {
          duration: this.metrics.requestDuration.labels(spec.tenant, spec.name),
          upstream: this.metrics.upstreamDuration.labels(spec.tenant, spec.name),
          throttled: this.metrics.throttled.labels(spec.tenant),
          phases,
          status(code: number) {
            let c = statusChildren.get(code);
            if (c === undefined) statusChildren.set(code, (c = requests.labels(spec.tenant, spec.name, String(code))));
            return c;
          },
        },
      };
    });
    return new Snapshot(version, this.configFile, compiled, new PrefixRouter(routes), routes, sandboxes);
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
        const next = this.#build(compiled);
        const prev = this.#snapshot;
        this.#snapshot = next;
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

  /** Disposes sandboxes that no snapshot in use refers to. */
  #freeUnused(): void {
    // The last requests of the old snapshot may still have their log phase queued: run it
    // now, while their sandboxes exist.
    if (this.#logFlushScheduled) this.#flushLogs();
    const used = new Set(this.#snapshot.sandboxes.values());
    for (const [key, sb] of this.#sandboxes) {
      if (!used.has(sb)) {
        this.#sandboxes.delete(key);
        this.#pool.forget(sb);
        sb.dispose();
      }
    }
  }

  /** --watch: the config file and every file of its plugins (entries and what esbuild bundled into them). */
  #watch(): void {
    this.#watcher = new FileWatch(() => void this.reload());
    this.#watcher.set(this.watchedFiles());
  }

  /** The config file and the files of its plugins, as of the running config. */
  watchedFiles(): string[] {
    const files = new Set([this.configFile]);
    for (const program of this.#snapshot.compiled.programs.values()) {
      for (const p of program.plugins) for (const f of p.inputs) files.add(f);
    }
    return [...files];
  }

  #queueLog(route: RuntimeRoute, reqJson: string, phaseJson: string, ctx: string): void {
    if (this.#stopping) return;
    const sb = route.sandbox!;
    let list = this.#logQueue.get(sb);
    if (list === undefined) this.#logQueue.set(sb, (list = []));
    list.push({ route, item: [route.chainId, reqJson, phaseJson, ctx] });
    if (!this.#logFlushScheduled) {
      this.#logFlushScheduled = true;
      setImmediate(this.#flushLogs);
    }
  }

  /** The log phase: after the responses are sent, one sandbox call per tenant per batch. */
  #flushLogs = (): void => {
    this.#logFlushScheduled = false;
    const queue = this.#logQueue;
    this.#logQueue = new Map();
    for (const [sb, entries] of queue) {
      for (let i = 0; i < entries.length; i += LOG_BATCH_MAX) {
        const part = entries.slice(i, i + LOG_BATCH_MAX);
        sb.touchedAt = performance.now();
        this.#pool.touch(sb);
        const results = sb.runBatch(part.map((e) => e.item));
        sb.budget.charge(sb.lastCallMs);
        results.forEach((r, k) => {
          const route = part[k].route;
          for (const f of r.faults) recordFault(this.#ctx, route, PHASE.LOG, f, route.instances[f.instance]?.failOpen === true);
          const bad = applyOps(r.ops, PHASE.LOG, LOG_ONLY_TARGET, route.logSinks.get(PHASE.LOG)!);
          if (bad !== null) recordFault(this.#ctx, route, PHASE.LOG, { outcome: 'bad_return', instance: bad.instance, detail: bad.detail }, false);
        });
      }
    }
  };

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
    for (const k of keys) this.#quarantined.add(k);
    for (const sb of this.#sandboxes.values()) {
      sb.program.instances.forEach((inst, idx) => {
        if (this.#quarantined.has(inst.quarantineKey)) sb.gate.quarantine(idx);
      });
    }
  }

  /** Plugin instances that are not healthy (breaker open or half-open, or quarantined). */
  unhealthyInstances(): { tenant: string; instance: string; state: string }[] {
    const out: { tenant: string; instance: string; state: string }[] = [];
    for (const sb of this.#snapshot.sandboxes.values()) {
      for (const u of sb.gate.unhealthy()) out.push({ tenant: sb.tenant, instance: sb.program.instances[u.instance].id, state: u.state });
    }
    return out;
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
      },
      unhealthyInstances: this.unhealthyInstances(),
    };
  }

  /** Stops listening, lets requests in flight finish (up to `graceMs`), frees every isolate. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#watcher?.close();
    // Tunnels are no longer the HTTP server's connections: closed here, or close() would wait for them.
    this.#websockets.closeAll();
    const closing = [closeServer(this.#proxy, graceMs)];
    if (this.#admin !== null) closing.push(closeServer(this.#admin, 0));
    await Promise.all(closing);
    this.#flushLogs();
    // Every request has ended (its line is written in its close handler): nothing is lost.
    await this.#accessLog?.close();
    await this.#pools.close();
    for (const sb of this.#sandboxes.values()) sb.dispose();
    this.#sandboxes.clear();
    this.#pool.close();
    this.#warm.close();
    // isolated-vm crashes if the process exits while the watchdog's thread runs: stop it first.
    await this.#watchdog.stop();
  }
}

function listen(server: Server, at: Listen): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolvePromise) => {
    if (!server.listening) return resolvePromise();
    server.close(() => resolvePromise());
    server.closeIdleConnections();
    const t = setTimeout(() => server.closeAllConnections(), graceMs);
    t.unref();
  });
}

