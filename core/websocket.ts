import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, errorBody } from './errors.ts';
import type { ProxyContext } from './proxy-context.ts';
import { resolveTarget } from './request-target.ts';
import { failureCode, newErrorId, newRequestState, runBeforeUpstream, runPhase, type RequestFailure, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { enterRoute, routeRewritten } from './rewrite-first.ts';
import { requestJson } from '../pdk-bridge/host/snapshots.ts';
import type { OpTarget } from '../pdk-bridge/host/ops.ts';
import { badRequestCode } from './request-checks.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import { EARLY_HEADER_FILTER } from '../pdk-bridge/phases.ts';
import { exitResponse, newTarget, upstreamHeaders, upstreamTarget } from './upstream-request.ts';
import { Handshake, answered, errorHeaders, fail, refuse } from './websocket-handshake.ts';

/**
 * WebSocket proxying (HTTP/1.1 Upgrade, RFC 6455). The handshake is a request like any
 * other: its tenant's rewrite chain, routed, the route's access chain (which may refuse it
 * with exit(), sent to the client as an ordinary HTTP response), then sent to the
 * service over a connection of its own (not a pooled one: the tunnel keeps it). When the
 * service answers 101, bytes flow both ways until either side closes or the tunnel has
 * been idle for `idleTimeoutMs`. A service's refusal (any other status) is relayed as is.
 *
 * Limits: the handshake's header block is bounded by node:http on both sides (16 KB);
 * each direction holds at most the socket's write buffer plus one read (the reading side is
 * paused until the other drains); a data message (its frames summed, as they are on the
 * wire) above `maxMessageBytes` closes the tunnel, with close code 1009 to a client that
 * sent it. headerFilter, bodyFilter and log do not run for a tunnel.
 */
export class WebSocketProxy {
  readonly #ctx: ProxyContext;
  /** Client sockets of handshakes and tunnels, so that stop() can close them (the HTTP server no longer tracks them). */
  readonly #live = new Set<Duplex>();

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  get open(): number {
    return this.#live.size;
  }

  /** Closes every tunnel and pending handshake (the gateway is stopping). */
  closeAll(): void {
    for (const socket of this.#live) socket.destroy();
    this.#live.clear();
  }

  /** node:http's 'upgrade' listener of the proxy server. */
  handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const live = this.#live;
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    socket.on('error', ignore);
    const ctx = this.#ctx;
    const started = performance.now();
    const bad = badRequestCode(req);
    if (bad !== null) {
      refuse(socket, ERRORS[bad].status, errorHeaders(), Buffer.from(errorBody(bad)));
      return;
    }
    const t = resolveTarget(ctx, ctx.current(), req);
    if (typeof t === 'string') {
      refuse(socket, ERRORS[t].status, errorHeaders(), Buffer.from(errorBody(t)));
      return;
    }
    // Until the tenant's rewrite chain has run and the route is chosen, the tenant's stage stands for the route.
    const stage = t.stage;
    const first = stage ?? t.match!.route;
    try {
      if (first.sandbox !== null && !first.sandbox.allow()) {
        first.metrics.throttled.inc();
        const headers = errorHeaders();
        const errorId = newErrorId();
        headers['retry-after'] = String(first.sandbox.retryAfterSeconds());
        headers['x-isogate-error-id'] = errorId;
        answered(first, started, 503);
        refuse(socket, 503, headers, Buffer.from(errorBody('ISG_ERR_TENANT_THROTTLED', errorId)));
        return;
      }
      const target = newTarget(first, upstreamHeaders(req, first, false), t.rawPath, stage === null ? t.match!.depth : 0, t.query);
      const state = newRequestState(first);
      const hs: Pending = { req, socket, head, t, target, state, started };
      if (stage === null) {
        this.#access(hs, t.match!.route, t.match!.depth, undefined);
        return;
      }
      const failure = runPhase(ctx, stage, PHASE.REWRITE, requestJson(req, t.path, t.query, stage, 0, Math.floor(performance.timeOrigin + started)), '', state, target, '');
      if (failure instanceof Promise) {
        failure.then((f) => { if (!socket.destroyed) this.#afterRewrite(hs, stage, f); }).catch((err: unknown) => this.#lost(socket, started, stage, err));
        return;
      }
      this.#afterRewrite(hs, stage, failure);
    } catch (err) {
      this.#lost(socket, started, first, err);
    }
  };

  /** The tenant's rewrite answered, or the route within the tenant is chosen on the handshake as rewritten (core/rewrite-first.ts). */
  #afterRewrite(hs: Pending, stage: TenantStage, failure: RequestFailure | null): void {
    if (failure !== null || hs.target.exit !== null) {
      this.#afterPlugins(hs, stage, failure);
      return;
    }
    const to = routeRewritten(stage, hs.t.match, hs.req, hs.target, hs.t.path, hs.t.rawPath);
    if (to === null) {
      fail(hs.socket, stage, hs.started, 'ISG_ERR_NO_ROUTE'); // counted as the tenant's, route ''
      return;
    }
    enterRoute(to.match.route, to.match.depth, to.rawPath, hs.target, hs.state, hs.req.headers.host);
    this.#access(hs, to.match.route, to.match.depth, to.path === hs.t.path ? undefined : to.path);
  }

  /** The route's access chain (a route's chain has no rewrite phase), then #afterPlugins. */
  #access(hs: Pending, route: RuntimeRoute, depth: number, routedPath: string | undefined): void {
    if (!route.runsAccess) {
      this.#afterPlugins(hs, route, null);
      return;
    }
    const { req, t } = hs;
    // a handshake has no headerFilter, so none rides early in its access crossing
    hs.state.phases &= ~EARLY_HEADER_FILTER;
    const failure = runBeforeUpstream(this.#ctx, route, requestJson(req, t.path, t.query, route, depth, Math.floor(performance.timeOrigin + hs.started), routedPath), hs.state, hs.target);
    if (failure instanceof Promise) {
      failure.then((f) => { if (!hs.socket.destroyed) this.#afterPlugins(hs, route, f); }).catch((err: unknown) => this.#lost(hs.socket, hs.started, route, err));
      return;
    }
    this.#afterPlugins(hs, route, failure);
  }

  #lost(socket: Duplex, started: number, route: RuntimeRoute, err: unknown): void {
    this.#ctx.log.error({ err, route: route.id }, 'internal error while proxying a WebSocket handshake');
    fail(socket, route, started, 'ISG_ERR_INTERNAL');
  }

  /** After rewrite and access (at once, or after their async PDK calls): the failure, the plugin's exit, or the handshake upstream. */
  #afterPlugins(hs: Pending, route: RuntimeRoute, failure: RequestFailure | null): void {
    const { req, socket, target, started } = hs;
    if (failure !== null) {
      fail(socket, route, started, failureCode(failure), failure.errorId);
      return;
    }
    if (target.exit !== null) {
      const exit = exitResponse(target);
      answered(route, started, exit.status);
      refuse(socket, exit.status, exit.headers, exit.body);
      return;
    }
    const headers = target.upstreamHeaders;
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade;
    new Handshake(this.#ctx, route, socket, hs.head, started).send(upstreamTarget(route, target, hs.t.bareQuery), headers);
  }
}

/** A handshake between its phases. */
type Pending = {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly t: Exclude<ReturnType<typeof resolveTarget>, string>;
  readonly target: OpTarget;
  readonly state: RequestState;
  readonly started: number;
};

/** For the server's shouldUpgradeCallback: only WebSocket upgrades become tunnels; any other Upgrade is proxied as a plain request without it. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (req.method !== 'GET' || upgrade === undefined) return false;
  for (const token of upgrade.split(',')) if (token.trim().toLowerCase() === 'websocket') return true;
  return false;
}

function ignore(): void {}
