import { PHASE, PHASE_NAME } from '../pdk-bridge/host/phases.ts';
import { accessLogHead } from './access-log.ts';
import { TenantSandbox } from '../sandbox/tenant-sandbox.ts';
import { SandboxCaller } from '../sandbox/phase-caller.ts';
import type { IsolatePool } from '../sandbox/pool.ts';
import type { Watchdog } from '../sandbox/watchdog.ts';
import type { WarmIsolates } from '../sandbox/blank.ts';
import type { CompiledConfig } from './config/compile.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { logSinkFor } from '../pdk-bridge/host/phase-call.ts';
import { applyConfigureOps, logPluginDisabled } from '../pdk-bridge/host/configure-log.ts';
import { REQUEST_PHASES, type RuntimeRoute } from './route.ts';
import { PrefixRouter } from './router/router.ts';
import { TenantHosts } from './router/tenant-hosts.ts';
import { NO_ROUTE_JSON, stageSpec } from './rewrite-first.ts';
import type { TenantStage } from './route.ts';
import { Snapshot } from './snapshot.ts';
import type { UpstreamPools } from './upstream.ts';

/** What the builder needs of the gateway: where to log and count, and what to share. */
export type SnapshotBuilderDeps = {
  readonly configFile: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly pools: UpstreamPools;
  readonly watchdog: Watchdog;
  /** The isolate pool, told of the sandboxes' use by their callers. */
  readonly isolates: IsolatePool;
  readonly warm: WarmIsolates;
  /** Told of every new sandbox, so a supervisor can name the plugin behind a crash beacon. */
  readonly onSandbox?: (slot: number, tenant: string, instances: readonly { id: string; key: string }[]) => void;
  readonly onCatastrophicError: (tenant: string, message: string) => void;
};

type RouteMetric = ReturnType<Metrics['requests']['labels']>;

/**
 * What pdk.router.getRoute/getService and log.serialize show of a route and its service,
 * in Kong's field names, encoded once per config: ids, names, matching rules, host, port,
 * path, timeouts. Nothing secret (a userinfo in the service url never appears).
 */
export function routeJson(spec: CompiledConfig['routes'][number]): string {
  const s = spec.service;
  const service = {
    id: `${s.tenant}/${s.name}`,
    name: s.name,
    protocol: 'http',
    host: s.hostname,
    port: s.port,
    path: s.basePath === '' ? '/' : s.basePath,
    retries: s.retries,
    connect_timeout: s.connectTimeoutMs,
    write_timeout: s.timeoutMs,
    read_timeout: s.timeoutMs,
  };
  const route = {
    id: spec.id,
    name: spec.name,
    protocols: ['http'],
    methods: spec.methods,
    hosts: spec.hosts,
    paths: spec.paths,
    strip_path: spec.stripPath,
    preserve_host: s.preserveHost,
    service: { id: service.id },
  };
  return JSON.stringify({ route, service });
}

/**
 * Turns compiled configs into snapshots. It keeps the tenant sandboxes across builds (a
 * tenant whose plugins did not change keeps its isolate) and the quarantine, which lasts
 * until a plugin's code changes.
 */
export class SnapshotBuilder {
  readonly #deps: SnapshotBuilderDeps;
  #sandboxes = new Map<string, TenantSandbox>();
  /** Each sandbox's face to the PDK bridge (what routes hold). */
  #callers = new Map<TenantSandbox, SandboxCaller>();
  readonly #touch: (sb: TenantSandbox) => void;
  /** Quarantine keys (instance id + code hash) set by the supervisor. */
  #quarantined = new Set<string>();
  #version = 0;

  constructor(deps: SnapshotBuilderDeps) {
    this.#deps = deps;
    this.#touch = (sb) => deps.isolates.touch(sb);
  }

  build(compiled: CompiledConfig): Snapshot {
    const version = ++this.#version;
    const sandboxes = this.#sandboxesFor(compiled);
    const stages = new Map<string, TenantStage>();
    for (const [tenant, rw] of compiled.rewrites) {
      stages.set(tenant, { ...this.#runtimeRoute(compiled, stageSpec(rw), sandboxes, null), pdkJson: NO_ROUTE_JSON, router: null! });
    }
    const routes = compiled.routes.map((spec) => this.#runtimeRoute(compiled, spec, sandboxes, stages.get(spec.tenant) ?? null));
    for (const [tenant, stage] of stages) {
      // The tenant's own routes: a rewritten request is routed among them only (it never leaves its tenant).
      (stage as { router: TenantStage['router'] }).router = new PrefixRouter(routes.filter((r) => r.tenant === tenant), 1000);
    }
    const hosts = stages.size === 0 ? null : new TenantHosts<TenantStage>(routes, (t) => stages.get(t) ?? null);
    return new Snapshot(version, this.#deps.configFile, compiled, new PrefixRouter(routes), routes, sandboxes, hosts);
  }

  /** The sandbox of each tenant with plugins: the one it had when its program is unchanged. */
  #sandboxesFor(compiled: CompiledConfig): Map<string, TenantSandbox> {
    const { log, metrics, watchdog, warm, onSandbox, onCatastrophicError } = this.#deps;
    const sandboxes = new Map<string, TenantSandbox>();
    for (const [tenant, program] of compiled.programs) {
      if (program.chains.length === 0) continue;
      const key = `${tenant}\0${program.key}`;
      let sb = this.#sandboxes.get(key);
      if (sb === undefined) {
        const named = { tenant, instances: compiled.instances.get(tenant) ?? [] };
        sb = new TenantSandbox(program, watchdog, {
          onIsolateCreated: (t, ms) => {
            metrics.isolateCreated.labels(t).inc();
            metrics.coldStart.observe(ms / 1000);
            log.debug({ tenant: t, ms: Number(ms.toFixed(2)) }, 'isolate created');
          },
          onIsolateDisposed: (t, reason) => log.debug({ tenant: t, reason }, 'isolate disposed'),
          onCatastrophicError,
          onPluginDisabled: (_t, fault) => logPluginDisabled(log, named, fault),
          onConfigureOps: (_t, ops) => applyConfigureOps(log, named, ops),
          warm,
        });
        this.#sandboxes.set(key, sb);
        this.#callers.set(sb, new SandboxCaller(sb, this.#touch));
        this.#applyQuarantine(sb);
        onSandbox?.(sb.slot, tenant, program.instances.map((i) => ({ id: i.id, key: i.quarantineKey })));
      }
      sandboxes.set(tenant, sb);
    }
    return sandboxes;
  }

  /** A route as requests use it: its pool, sandbox, phase flags, log sinks and metric children, all made here once. */
  #runtimeRoute(compiled: CompiledConfig, spec: CompiledConfig['routes'][number], sandboxes: ReadonlyMap<string, TenantSandbox>, rewrite: TenantStage | null): RuntimeRoute {
    const { log, metrics, pools } = this.#deps;
    const sb = spec.chainId >= 0 ? sandboxes.get(spec.tenant) : undefined;
    const sandbox = sb === undefined ? null : this.#callers.get(sb)!;
    const instances = compiled.instances.get(spec.tenant) ?? [];
    const program = compiled.programs.get(spec.tenant);
    // The route's chain and its consumer variants: a phase any of them has gets its metric and log sink.
    const ids = spec.chainId >= 0 && program !== undefined ? [spec.chainId, ...[...(spec.consumerChains?.values() ?? [])].flatMap((byPhase) => Object.values(byPhase).flatMap((sw) => sw.chains.map((c) => c.chainId)))] : [];
    const phases = new Map<number, ReturnType<Metrics['pluginDuration']['labels']>>();
    const logSinks = new Map<number, ReturnType<typeof logSinkFor>>();
    for (const bit of Object.values(PHASE)) {
      const list = ids.flatMap((id) => program!.chains[id][bit] ?? []);
      if (list.length === 0) continue;
      const label = [...new Set(list.map((i) => instances[i].name))].join('+');
      phases.set(bit, metrics.pluginDuration.labels(spec.tenant, label, PHASE_NAME[bit]));
      logSinks.set(bit, logSinkFor(log, { tenant: spec.tenant, instances }, bit));
    }
    const statusChildren = new Map<number, RouteMetric>();
    const requests = metrics.requests;
    return {
      ...spec,
      // A tenant's rewrite stage has no service (origin ''): nothing is ever sent upstream through it.
      pool: spec.service.origin === '' ? (null as never) : pools.get(spec.service.origin, spec.service.connectTimeoutMs),
      poolFor: (origin, connectTimeoutMs) => pools.get(origin, connectTimeoutMs),
      targets: new Set(spec.service.targets),
      pdkJson: routeJson(spec),
      accessLogHead: accessLogHead(spec.tenant, spec.name),
      sandbox,
      instances,
      runsAccess: sandbox !== null && (spec.phases & REQUEST_PHASES) !== 0,
      runsHeaderFilter: sandbox !== null && (spec.phases & PHASE.HEADER_FILTER) !== 0,
      runsBodyFilter: sandbox !== null && (spec.phases & PHASE.BODY_FILTER) !== 0,
      runsResponse: sandbox !== null && (spec.phases & PHASE.RESPONSE) !== 0,
      readsClientBody: sandbox !== null && spec.readsBody && (spec.phases & REQUEST_PHASES) !== 0,
      runsLog: sandbox !== null && (spec.phases & PHASE.LOG) !== 0,
      rewrite,
      logSinks,
      metrics: {
        duration: metrics.requestDuration.labels(spec.tenant, spec.name),
        upstream: metrics.upstreamDuration.labels(spec.tenant, spec.name),
        throttled: metrics.throttled.labels(spec.tenant),
        phases,
        status(code: number) {
          let c = statusChildren.get(code);
          if (c === undefined) statusChildren.set(code, (c = requests.labels(spec.tenant, spec.name, String(code))));
          return c;
        },
      },
    };
  }

  /**
   * Quarantines plugin instances by key (instance id + code hash), in every sandbox now
   * and in those built later.
   */
  quarantine(keys: readonly string[]): void {
    for (const k of keys) this.#quarantined.add(k);
    for (const sb of this.#sandboxes.values()) this.#applyQuarantine(sb);
  }

  #applyQuarantine(sb: TenantSandbox): void {
    sb.program.instances.forEach((inst, idx) => {
      if (this.#quarantined.has(inst.quarantineKey)) sb.gate.quarantine(idx);
    });
  }

  /** Disposes the sandboxes `current` does not use; `forget` is told of each first. */
  freeUnused(current: Snapshot, forget: (sb: TenantSandbox) => void): void {
    const used = new Set(current.sandboxes.values());
    for (const [key, sb] of this.#sandboxes) {
      if (!used.has(sb)) {
        this.#sandboxes.delete(key);
        this.#callers.delete(sb);
        forget(sb);
        sb.dispose();
      }
    }
  }

  /** Disposes every sandbox (the gateway stops). */
  disposeAll(): void {
    for (const sb of this.#sandboxes.values()) sb.dispose();
    this.#sandboxes.clear();
    this.#callers.clear();
  }
}
