import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OpTarget } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { failureCode, runPhase, type PipelineContext, type RequestFailure, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import type { RouteSpec, ServiceSpec, TenantRewriteSpec } from './config/compile.ts';
import { sendError } from './errors.ts';
import type { ClientBody } from './request-body.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import { exactPath, normalizePath, stripSegments, type Match } from './router/router.ts';

/**
 * Kong's rewrite phase: it runs before the route is known, so only tenant-wide plugin
 * instances run in it (ChainBuilder.tenantRewrite), and the route is then chosen, within
 * the tenant, on the request as rewrite left it: its path (serviceRequest.setPath), method
 * (setMethod) and Host header (setHeader('host')).
 *
 * The tenant is known first: it is the tenant of the route the request matches as received
 * (the one router lookup every request makes anyway), or, when none does, the one tenant
 * with routes on the request's host (core/router/tenant-hosts.ts). Its rewrite chain runs
 * (one crossing), then the tenant's own router picks the route; a tenant without rewrite
 * handlers never comes here (RuntimeRoute.rewrite is null): its requests pay nothing new.
 */

/** A tenant's rewrite stage has no route: what router.getRoute/getService read in rewrite (Kong: nil before routing). */
export const NO_ROUTE_JSON = '{"route":null,"service":null}';

/** The route spec of a tenant's rewrite stage: its rewrite chain, no service, the client's Host kept. */
export function stageSpec(rw: TenantRewriteSpec): RouteSpec {
  const service: ServiceSpec = {
    tenant: rw.tenant, name: '', origin: '', hostname: '', port: 0, basePath: '', hostHeader: '',
    preserveHost: true, timeoutMs: 0, connectTimeoutMs: 0, retries: 0, targets: [],
  };
  return {
    id: `${rw.tenant}/`, tenant: rw.tenant, name: '', service, hosts: null, paths: [], methods: null, stripPath: false,
    proxy: rw.proxy, chainId: rw.chainId, phases: rw.phases, chainPhases: rw.phases, readsBody: rw.readsBody,
    consumerChains: null, consumers: rw.consumers,
  };
}

/** Where a rewritten request goes: the route, and its path as routed (normalized) and as sent upstream (exact). */
export type Rerouted = { readonly match: Match<RuntimeRoute>; readonly path: string; readonly rawPath: string };

/**
 * The route of a request after the tenant's rewrite chain, among the tenant's routes, or
 * null (404). When rewrite changed none of path, method and Host, the route the request
 * matched as received stands (the tenant's router would find the same one).
 */
export function routeRewritten(stage: TenantStage, matched: Match<RuntimeRoute> | null, req: IncomingMessage, target: OpTarget, path: string, rawPath: string): Rerouted | null {
  const set = target.upstreamPath;
  const moved = set !== rawPath;
  const method = target.method ?? req.method!;
  const h = target.upstreamHeaders.host;
  const host = typeof h === 'string' ? h : undefined;
  if (!moved && method === req.method && host === req.headers.host && matched !== null) return { match: matched, path, rawPath };
  // The path rewrite set is routed as if the client had sent it: normalized for routing, dot segments removed upstream.
  const routed = moved ? normalizePath(set) : path;
  const match = stage.router.match(host, method, routed);
  return match === null ? null : { match, path: routed, rawPath: moved ? exactPath(set) : rawPath };
}

/**
 * Moves a request from its tenant's rewrite stage onto its route: the upstream path is the
 * routed one under the route's stripPath, the service's Host replaces the client's unless
 * rewrite set one (or the service preserves it), service.setTarget is checked against the
 * route's service, and the request runs the route's chain, or, when rewrite authenticated
 * a consumer, the chain authenticating it before access leads to.
 */
export function enterRoute(route: RuntimeRoute, depth: number, rawPath: string, target: OpTarget, state: RequestState, clientHost: string | undefined): void {
  target.upstreamPath = route.stripPath ? stripSegments(rawPath, depth) : rawPath;
  if (!route.service.preserveHost && target.upstreamHeaders.host === clientHost) target.upstreamHeaders.host = route.service.hostHeader;
  target.targets = route.targets;
  state.chainId = route.chainId;
  state.phases = route.chainPhases;
  const consumer = state.auth?.consumer;
  const to = consumer == null ? undefined : route.consumerChains?.get(consumer.id)?.[PHASE.ACCESS]?.chains[0];
  if (to !== undefined) {
    state.chainId = to.chainId;
    state.phases = to.phases;
  }
}

/** What the rewrite stage needs of a request in flight (an Exchange of core/proxy.ts). */
export type RewriteExchange = {
  readonly ctx: PipelineContext;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly closed: boolean;
  readonly path: string;
  readonly target: OpTarget | null;
  readonly state: RequestState;
  readonly matched: Match<RuntimeRoute> | null;
  route: RuntimeRoute;
  depth: number;
  rawPath: string;
  /** The path the route matched when rewrite moved the request (request.getUriCaptures reads it), else undefined. */
  routedPath: string | undefined;
  /** The request snapshot, rebuilt on next use once the route is known. */
  reqJson: string;
  sentHeaders: unknown;
  requestJson(): string;
  sendExit(): void;
  pluginsLost(err: unknown): void;
  /** Goes on with the route's chain: reads the client's body if the route's plugins read it and rewrite's did not, then access. */
  readBody(client: ClientBody): void;
};

/** The tenant's rewrite chain, then the route, then the route's chain (ex.readBody). `ex.route` is the stage until then. */
export function runRewrite(ex: RewriteExchange, stage: TenantStage, client: ClientBody): void {
  const failure = runPhase(ex.ctx, stage, PHASE.REWRITE, ex.requestJson(), '', ex.state, ex.target!, stage.readsClientBody ? client.text : '');
  if (failure instanceof Promise) {
    // .catch: a bug of ours routing or entering the route after the wait fails this request, not the process
    failure.then((f) => afterRewrite(ex, stage, client, f)).catch((err: unknown) => ex.pluginsLost(err));
    return;
  }
  afterRewrite(ex, stage, client, failure);
}

function afterRewrite(ex: RewriteExchange, stage: TenantStage, client: ClientBody, failure: RequestFailure | null): void {
  if (ex.closed) return;
  if (failure !== null) {
    ex.sentHeaders = sendError(ex.res, failureCode(failure), failure.errorId);
    return;
  }
  const target = ex.target!;
  if (target.exit !== null) {
    ex.sendExit();
    return;
  }
  const to = routeRewritten(stage, ex.matched, ex.req, target, ex.path, ex.rawPath);
  if (to === null) {
    // counted as the tenant's (its stage's metrics, when the response closes), not as an unmatched request
    ex.sentHeaders = sendError(ex.res, 'ISG_ERR_NO_ROUTE');
    return;
  }
  const route = to.match.route;
  ex.route = route;
  ex.depth = to.match.depth;
  ex.rawPath = to.rawPath;
  if (to.path !== ex.path) ex.routedPath = to.path;
  ex.reqJson = '';
  enterRoute(route, to.match.depth, to.rawPath, target, ex.state, ex.req.headers.host);
  ex.readBody(client);
}
