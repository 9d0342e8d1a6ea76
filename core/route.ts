import type { FastCounterChild, FastHistogramChild } from './fast-metrics.ts';
import type { Pool } from 'undici';
import type { InstanceInfo, RouteSpec, ServiceSpec } from './config/compile.ts';
import type { PhaseCaller } from '../sandbox/phase-caller.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import type { LogSink } from '../pdk-bridge/host/ops.ts';
import type { Router } from './router/router.ts';

type HistogramChild = FastHistogramChild;
type CounterChild = FastCounterChild;

/**
 * A route with everything a request needs already resolved: its upstream pool, its
 * tenant's sandbox, which phases run, and its metric children. Built once per config
 * snapshot; a phase with nothing to run is `false`, so the request path pays one check.
 */
export type RuntimeRoute = RouteSpec & {
  readonly pool: Pool;
  /** The pool of another origin or connect timeout (service.setTarget, setScheme, setTimeouts). */
  readonly poolFor: (origin: string, connectTimeoutMs: number) => Pool;
  /** "host:port" service.setTarget may choose (ServiceSpec.targets). */
  readonly targets: ReadonlySet<string>;
  /** The route and service as the PDK shows them (JSON, see snapshot-builder routeJson), appended to request snapshots. */
  readonly pdkJson: string;
  /** The route's part of its access log lines (core/access-log.ts accessLogHead). */
  readonly accessLogHead: string;
  readonly service: ServiceSpec;
  /** null when no plugin applies to the route. */
  readonly sandbox: PhaseCaller | null;
  readonly instances: readonly InstanceInfo[];
  readonly runsAccess: boolean;
  readonly runsHeaderFilter: boolean;
  readonly runsBodyFilter: boolean;
  /** A `response` handler: the whole upstream response is buffered for it. */
  readonly runsResponse: boolean;
  /** The client's body is buffered before rewrite/access (a plugin reads it: RouteSpec.readsBody). */
  readonly readsClientBody: boolean;
  readonly runsLog: boolean;
  /** The rewrite stage of the route's tenant when it has tenant-wide rewrite handlers, else null (core/rewrite-first.ts). */
  readonly rewrite: TenantStage | null;
  /** Phase bit -> sink for the pdk.log lines of that phase. */
  readonly logSinks: ReadonlyMap<number, LogSink>;
  readonly metrics: {
    readonly duration: HistogramChild;
    readonly upstream: HistogramChild;
    readonly throttled: CounterChild;
    /** Phase bit -> chain call duration. */
    readonly phases: ReadonlyMap<number, HistogramChild>;
    status(code: number): CounterChild;
  };
};

/**
 * A tenant's rewrite stage: what runs once the tenant of a request is known and before its
 * route is (core/rewrite-first.ts). Shaped as a route so the phase calls take it as one:
 * its chain is the tenant's rewrite chain, its name '' (metrics and the access log of a
 * request answered before routing), it has no service (nothing is sent upstream through
 * it), and `router` matches the tenant's own routes on the request as rewritten.
 */
export type TenantStage = RuntimeRoute & { readonly router: Router<RuntimeRoute> };

export const REQUEST_PHASES = PHASE.REWRITE | PHASE.ACCESS;
