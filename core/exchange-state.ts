import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { OpTarget } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { newRequestState, withAuth, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import { logSnapshot, requestJson } from '../pdk-bridge/host/snapshots.ts';
import type { ProxyContext } from './proxy-context.ts';
import type { ClientBody } from './request-body.ts';
import type { BodyFilterStream, ResponseBuffer } from './response-body.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import type { Match } from './router/router.ts';
import type { Snapshot } from './snapshot.ts';

type Headers = Record<string, string | string[] | undefined>;

/** The client's body was not read: it streams upstream as it comes. */
export const STREAMED: ClientBody = { text: '', upstream: null };
export const NO_BODY: ClientBody = { text: '', upstream: null };

/**
 * What one proxied request holds from its start to its end, and the bookkeeping when its
 * response closes (metrics, the log phase, the access log). The first layer of the
 * request's Exchange (core/proxy.ts): core/before-upstream.ts runs the phases before the
 * upstream on it, core/response-writing.ts writes the response, core/proxy.ts is the undici
 * dispatch handler. One object per request; the layers' methods are shared on the prototypes.
 */
export class ExchangeState {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Kept: req.socket is gone by the end when undici consumed the request body. */
  readonly socket: Socket;
  /** The route; until the tenant's rewrite chain has run and the route is chosen, the tenant's stage (core/rewrite-first.ts). */
  route: RuntimeRoute;
  /** The tenant's rewrite stage when its tenant has one, else null. */
  readonly stage: TenantStage | null;
  /** The route the request matched as received (null: none did, its host told the tenant). */
  readonly matched: Match<RuntimeRoute> | null;
  readonly ctx: ProxyContext;
  readonly snapshot: Snapshot;
  readonly started = performance.now();
  /** The client's normalized path: what routing (unless a rewrite moved the request) and plugins see. */
  readonly path: string;
  /** The client's own path bytes, dot segments removed (exactPath): what the upstream gets; a rewrite's path once it moved the request. */
  rawPath: string;
  /** The path routed when the tenant's rewrite moved the request (request.getUriCaptures), else undefined. */
  routedPath: string | undefined = undefined;
  readonly query: string;
  /** The target ended in a bare "?" (kept upstream unless a plugin sets a query). */
  readonly bareQuery: boolean;
  /** The client sent `TE: trailers`: upstream trailers are relayed to it. */
  trailers = false;
  /** Request snapshot for plugins, built on first use. */
  reqJson = '';
  state: RequestState;
  target: OpTarget | null = null;
  controller: Dispatcher.DispatchController | null = null;
  upstreamStarted = 0;
  /** Request sent upstream to its response headers, in ms (-1: nothing went upstream). */
  upstreamMs = -1;
  /** response phase: the upstream response being buffered. */
  buffer: ResponseBuffer | null = null;
  /** bodyFilter: the chain the body streams through. */
  filter: BodyFilterStream | null = null;
  closed = false;
  /** Set once the gateway answered on its own (a plugin failed after the upstream began). */
  answered = false;
  /** Segments of the route prefix that matched (request.getUriCaptures). */
  depth = 0;
  /** Path and query sent upstream (log.serialize's upstream_uri). */
  upstreamUri = '';
  /** "host:port" the request was sent to, times it was sent, sends left (service.setRetries). */
  upstreamAt = '';
  tries = 0;
  retriesLeft = 0;
  hasBody = false;
  /** The client's body as read for plugins (core/request-body.ts), or STREAMED / NO_BODY. */
  client: ClientBody = NO_BODY;
  /** What is sent upstream as the body: the client's stream, the buffered or replaced bytes, or null. */
  upstreamBody: Buffer | AsyncIterable<Buffer> | IncomingMessage | null = null;
  /** socket.bytesWritten when the exchange began (log.serialize's response size); only for routes with a log phase. */
  bytesAtStart = 0;
  /**
   * The response headers as passed to writeHead: node:http keeps no copy of those
   * (res.getHeaders() is empty after writeHead(status, object)), and the log phase shows them.
   */
  sentHeaders: Headers | null = null;

  constructor(ctx: ProxyContext, snapshot: Snapshot, stage: TenantStage | null, matched: Match<RuntimeRoute> | null, req: IncomingMessage, res: ServerResponse, path: string, rawPath: string, query: string, bareQuery: boolean) {
    const route = stage ?? matched!.route;
    this.ctx = ctx;
    this.snapshot = snapshot;
    this.route = route;
    this.stage = stage;
    this.matched = matched;
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    this.path = path;
    this.rawPath = rawPath;
    this.query = query;
    this.bareQuery = bareQuery;
    if (route.runsLog || stage !== null) this.bytesAtStart = this.socket.bytesWritten;
    this.state = newRequestState(route);
    // on, not once: a response closes once (node:http's _closed), and once() wraps and binds
    // the listener per request, then removes it when it fires
    res.on('close', this.onClose);
  }

  requestJson(): string {
    if (this.reqJson === '') this.reqJson = requestJson(this.req, this.path, this.query, this.route, this.depth, Math.floor(performance.timeOrigin + this.started), this.routedPath);
    return this.reqJson;
  }

  onDrain = (): void => {
    this.controller?.resume();
  };

  onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    const res = this.res;
    const route = this.route;
    const completed = res.writableFinished;
    if (!completed) this.controller?.abort(new Error('client closed the connection'));
    const status = completed ? res.statusCode : 499;
    route.metrics.status(status).inc();
    const now = performance.now();
    route.metrics.duration.observe((now - this.started) / 1000);
    if (route.runsLog && (this.state.phases & PHASE.LOG) !== 0) {
      this.ctx.queueLog(route, withAuth(this.requestJson(), this.state), logSnapshot(this, status), this.state.ctx, this.state.chainId);
    }
    this.ctx.accessLog?.write(this, status, now);
    this.snapshot.release();
  };
}
