import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { AccessLog } from './access-log.ts';
import { applyHeaderEdits, type OpTarget } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { sendError } from './errors.ts';
import { acceptsTrailers, appendVia, endToEnd } from './headers.ts';
import { failureCode, newErrorId, newRequestState, runBeforeUpstream, runFilterPhase, runHeaderFilter, withAuth, type PipelineContext, type RequestFailure, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import type { Match } from './router/router.ts';
import { runRewrite } from './rewrite-first.ts';
import { logSnapshot, requestJson } from '../pdk-bridge/host/snapshots.ts';
import { dispatchUpstream, retryable } from './upstream-choice.ts';
import { refuseBadRequest } from './request-checks.ts';
import { exitResponse, newTarget, upstreamHeaders, upstreamTarget } from './upstream-request.ts';
import { readClientBody, type ClientBody } from './request-body.ts';
import { BodyFilterStream, ResponseBuffer, type Buffered } from './response-body.ts';
import { resolveTarget } from './request-target.ts';
import { shed } from './shed.ts';
import type { Snapshot } from './snapshot.ts';

type Headers = Record<string, string | string[] | undefined>;

/** The client's body was not read: it streams upstream as it comes. */
const STREAMED: ClientBody = { text: '', upstream: null };
const NO_BODY: ClientBody = { text: '', upstream: null };
const EMPTY = Buffer.alloc(0);

/** Reads an over-cap client body to its end and drops it (its first part was already read). */
function drain(body: AsyncIterable<Buffer>): void {
  void (async () => {
    for await (const _ of body);
  })().catch(() => {}); // the client went away: nothing to drop
}

/** What the proxy needs of the gateway: the current snapshot and the pipeline's context. */
export type ProxyContext = PipelineContext & {
  current(): Snapshot;
  /** Queues the log phase of a finished request (run after the response, in batches). */
  queueLog(route: RuntimeRoute, reqJson: string, phaseJson: string, ctx: string, chainId: number): void;
  countUnmatched(): void;
  /** null when the access log is off. */
  readonly accessLog: AccessLog | null;
};

export { exitResponse, newTarget, upstreamHeaders, upstreamTarget } from './upstream-request.ts';

/**
 * One proxied request: the phases, the upstream exchange (an undici dispatch handler, so
 * the body streams both ways without buffering) and the bookkeeping at the end. One object
 * per request; its methods are shared on the prototype.
 */
class Exchange implements Dispatcher.DispatchHandler {
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
    res.once('close', this.onClose);
  }

  requestJson(): string {
    if (this.reqJson === '') this.reqJson = requestJson(this.req, this.path, this.query, this.route, this.depth, Math.floor(performance.timeOrigin + this.started), this.routedPath);
    return this.reqJson;
  }

  start(depth: number): void {
    this.depth = depth;
    const route = this.route;
    if (shed(this)) return;
    const req = this.req;
    const te = req.headers.te;
    // Only a chunked response carries trailers: never to HTTP/1.0, never on HEAD.
    this.trailers = te !== undefined && req.httpVersionMinor >= 1 && req.method !== 'HEAD' && acceptsTrailers(te);
    const target = newTarget(route, upstreamHeaders(req, route, this.trailers), this.rawPath, depth, this.query);
    this.target = target;
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    this.readBody(hasBody ? STREAMED : NO_BODY);
  }

  /** Reads the client's body first when the chain about to run has a plugin that reads it (and it was not read yet), then proceeds. */
  readBody(client: ClientBody): void {
    const route = this.route;
    if (!route.readsClientBody || client !== STREAMED) {
      this.proceed(client);
      return;
    }
    readClientBody(this.req, true, route.proxy.bodies.maxRequestBodyBytes).then(
      (body) => this.proceed(body),
      (err: unknown) => {
        // the client went away (or its framing broke) while its body was read
        this.ctx.log.debug({ tenant: route.tenant, route: route.name, err: String(err) }, 'client body not read');
        if (!this.closed) sendError(this.res, 'ISG_ERR_BAD_FRAMING');
      },
    );
  }

  /** After the client's body was read (or not): the tenant's rewrite (then routing), access, then the upstream. */
  proceed(body: ClientBody): void {
    if (this.closed) return;
    try {
      if (this.route === this.stage) runRewrite(this, this.stage, body);
      else this.#proceed(body);
    } catch (err) {
      const errorId = newErrorId();
      this.ctx.log.error({ err, route: this.route.id, errorId }, 'internal error while proxying');
      sendError(this.res, 'ISG_ERR_INTERNAL', errorId);
    }
  }

  #proceed(client: ClientBody): void {
    const route = this.route;
    const target = this.target!;
    this.client = client;
    if (route.runsAccess) {
      const failure = runBeforeUpstream(this.ctx, route, this.requestJson(), this.state, target, route.readsClientBody ? client.text : '');
      if (failure !== null) {
        if (failure instanceof Promise) {
          // .catch, not then's second argument: a throw of ours in afterPlugins must not become an unhandled rejection (it ends the process)
          failure.then((f) => this.afterPlugins(f)).catch((err: unknown) => this.pluginsLost(err));
          return;
        }
        this.sentHeaders = sendError(this.res, failureCode(failure), failure.errorId);
        return;
      }
      if (target.exit !== null) {
        this.sendExit();
        return;
      }
    }
    this.dispatch();
  }

  /** Rewrite and access finished after waiting on async PDK calls; a client gone meanwhile gets nothing. */
  afterPlugins(failure: RequestFailure | null): void {
    if (this.closed) return;
    if (failure !== null) this.sentHeaders = sendError(this.res, failureCode(failure), failure.errorId);
    else if (this.target!.exit !== null) this.sendExit();
    else this.dispatch();
  }

  /** A bug of ours while a chain waited: the request fails as the gateway's error, the process goes on. */
  pluginsLost(err: unknown): void {
    const errorId = (this.state.errorId = newErrorId());
    this.ctx.log.error({ tenant: this.route.tenant, route: this.route.name, errorId, err: String((err as Error)?.message) }, 'async plugin phase failed');
    if (this.closed) return;
    // sendError cuts a response whose headers are out rather than leave the client waiting
    const sent = sendError(this.res, 'ISG_ERR_INTERNAL', errorId);
    if (sent !== null) this.sentHeaders = sent;
  }

  /** Sends the request upstream, as the plugins left it. */
  dispatch(): void {
    const route = this.route;
    const req = this.req;
    const target = this.target!;
    const client = this.client;
    this.upstreamUri = upstreamTarget(route, target, this.bareQuery);
    let body = client === STREAMED ? req : client.upstream;
    if (target.body !== null) {
      // serviceRequest.setRawBody: what is left of the client's body is read and dropped
      if (client.upstream === req || client === STREAMED) req.resume();
      else if (client.upstream !== null && !Buffer.isBuffer(client.upstream)) drain(client.upstream);
      body = Buffer.from(target.body);
      target.body = null;
    }
    if (Buffer.isBuffer(body)) {
      delete target.upstreamHeaders['transfer-encoding'];
      target.upstreamHeaders['content-length'] = String(body.length);
    }
    this.upstreamBody = body;
    this.hasBody = body !== null;
    this.retriesLeft = target.retries ?? route.service.retries;
    this.dispatchUpstream();
  }

  /** Sends the request upstream: to the service, or where service.* and serviceRequest.set{Method,Scheme} said. */
  dispatchUpstream(): void {
    this.tries++;
    this.upstreamStarted = performance.now();
    this.upstreamAt = dispatchUpstream(this.route, this.target!, this.req.method!, this.upstreamUri, this.upstreamBody as Dispatcher.DispatchOptions['body'], this);
  }

  /**
   * A plugin's exit(): its response goes through headerFilter and bodyFilter as an upstream
   * response does (Kong runs header_filter and body_filter on it; response.getSource() is
   * 'exit'). A chain without them writes it at once; an early chain's headerFilter already
   * ran in the access crossing (runHeaderFilter applies its result, no crossing).
   */
  sendExit(): void {
    const target = this.target!;
    const { status, headers, body } = exitResponse(target);
    target.responseEdits = null; // applied: headerFilter's edits start a new list
    if (!this.afterHeaders(status, headers, null, null)) return;
    if (this.filter !== null) this.filter.chunk(this, body ?? EMPTY, true);
    else this.res.end(body);
  }

  // --- undici dispatch handler ---

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.closed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, upstreamStatus: number, headers: Headers): void {
    let status = upstreamStatus;
    if (status < 200) return; // 1xx from upstream: the final response follows
    const route = this.route;
    this.upstreamMs = performance.now() - this.upstreamStarted;
    route.metrics.upstream.observe(this.upstreamMs / 1000);
    const out = endToEnd(headers);
    if (route.proxy.via11 !== null) appendVia(out, route.proxy.via11);
    // Trailer is dropped with the connection-level fields unless the trailers it announces
    // will be relayed: to a client that accepts them, on a chunked body (node:http refuses
    // Trailer with a Content-Length; an upstream Content-Length is kept, never re-chunked).
    if (this.trailers && headers.trailer !== undefined && headers['content-length'] === undefined && status !== 204 && status !== 304) out.trailer = headers.trailer;
    // the chain this request runs (a consumer's variant may differ from the route's)
    if ((route.runsResponse && (this.state.phases & PHASE.RESPONSE) !== 0) || this.target!.buffering === true) {
      this.buffer = new ResponseBuffer(status, out);
      return;
    }
    this.afterHeaders(status, out, null, null);
  }

  /**
   * headerFilter, then the headers go out, or wait for the first filtered chunk under a
   * bodyFilter. `upstream`: the upstream's own status and headers when a response phase
   * changed them, `body` the upstream's body when buffered (what serviceResponse reads).
   * False when the request ended on a failure.
   */
  afterHeaders(status: number, out: Headers, upstream: { s: number; h: Headers } | null, body: string | null): boolean {
    const route = this.route;
    const target = this.target!;
    if (route.runsHeaderFilter) {
      const snapshot = target.exit !== null ? { s: status, h: out, src: 'exit' } : upstream === null ? { s: status, h: out } : { s: status, h: out, ss: upstream.s, sh: upstream.h };
      // no crossing when the access crossing ran it early (state.early)
      const failure = runHeaderFilter(this.ctx, route, this.requestJson(), snapshot, this.state, target, body);
      if (failure !== null) {
        this.fail(failure);
        return false;
      }
    }
    const edits = target.responseEdits;
    if (edits !== null) applyHeaderEdits(out, edits);
    const set = target.status ?? null; // response.setStatus
    if (set !== null) {
      status = set;
      // a 204 or 304 has no body: what framed the upstream's body must not go out with it
      if (status === 204 || status === 304) {
        delete out['content-length'];
        delete out['transfer-encoding'];
        delete out.trailer;
      }
    }
    this.sentHeaders = out; // written now, or by the bodyFilter with its first output
    if (route.runsBodyFilter && (this.state.phases & PHASE.BODY_FILTER) !== 0) {
      this.filter = new BodyFilterStream(status, out, this.req.method === 'HEAD', target.exit !== null);
      return true;
    }
    this.res.writeHead(status, out);
    return true;
  }

  /** A plugin failed once the upstream answered: the gateway's error, or a cut response when the headers are out. */
  fail(failure: RequestFailure): void {
    this.answered = true;
    this.controller?.abort(new Error('plugin failed'));
    const sent = sendError(this.res, failureCode(failure), failure.errorId);
    if (sent !== null) this.sentHeaders = sent;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.answered) return;
    if (this.buffer !== null) {
      const failure = this.buffer.add(this, chunk);
      if (failure !== null) this.fail(failure);
      return;
    }
    if (this.filter !== null) {
      this.filter.push(this, chunk);
      return;
    }
    if (this.res.destroyed) return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Headers): void {
    if (this.answered) return;
    if (this.buffer !== null) {
      this.finishBuffered(this.buffer);
      return;
    }
    if (this.filter !== null) {
      this.filter.flush(this, true);
      return;
    }
    // node:http sends trailers only on a chunked response, which is the only kind that has them.
    if (this.trailers) {
      for (const _ in trailers) {
        const fields = endToEnd(trailers);
        delete fields['content-length'];
        this.res.addTrailers(fields as Record<string, string>);
        break;
      }
    }
    this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.closed || this.answered) return;
    if (this.res.headersSent) {
      this.res.destroy(err);
      return;
    }
    const code = (err as { code?: string }).code;
    if (this.retriesLeft > 0 && !this.hasBody && this.upstreamMs < 0 && code !== undefined && retryable(code)) {
      this.retriesLeft--;
      this.dispatchUpstream();
      return;
    }
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    const errorId = (this.state.errorId = newErrorId());
    this.ctx.log.info({ tenant: this.route.tenant, route: this.route.name, code: code ?? err.name, errorId }, `upstream error: ${err.message}`);
    // A response undici could not parse (or framed wrongly) is a bad response, not an unreachable upstream.
    const invalid = err.name === 'HTTPParserError' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code?.startsWith('HPE_') === true;
    this.sentHeaders = sendError(this.res, timeout ? 'ISG_ERR_UPSTREAM_TIMEOUT' : invalid ? 'ISG_ERR_UPSTREAM_BAD_RESPONSE' : 'ISG_ERR_UPSTREAM_UNAVAILABLE', errorId);
  }

  /** The response phase on the whole response, then headerFilter and bodyFilter as for a streamed one. */
  finishBuffered(buffer: ResponseBuffer): void {
    this.buffer = null;
    const r = buffer.run(this);
    if (r instanceof Promise) {
      // the chain waits on async PDK calls: nothing is sent until it ended
      // (a throw of ours in what follows is caught too: it would otherwise be an unhandled rejection)
      r.then((v) => this.afterResponse(buffer, v)).catch((err: unknown) => this.pluginsLost(err));
      return;
    }
    this.afterResponse(buffer, r);
  }

  /** After the response phase; a client gone while its chain waited gets nothing. */
  afterResponse(buffer: ResponseBuffer, r: Buffered | RequestFailure): void {
    if (this.closed) return;
    if ('fault' in r) {
      this.fail(r);
      return;
    }
    if (!this.afterHeaders(r.status, r.headers, { s: buffer.status, h: buffer.headers }, r.upstreamText)) return;
    if (this.filter !== null) this.filter.chunk(this, r.body, true);
    else this.res.end(r.body);
  }

  onDrain = (): void => {
    this.controller?.resume();
  };

  onClose = (): void => {
    this.closed = true;
    const res = this.res;
    const route = this.route;
    const completed = res.writableFinished;
    if (!completed) this.controller?.abort(new Error('client closed the connection'));
    const status = completed ? res.statusCode : 499;
    route.metrics.status(status).inc();
    route.metrics.duration.observe((performance.now() - this.started) / 1000);
    if (route.runsLog && (this.state.phases & PHASE.LOG) !== 0) {
      this.ctx.queueLog(route, withAuth(this.requestJson(), this.state), logSnapshot(this, status), this.state.ctx, this.state.chainId);
    }
    this.ctx.accessLog?.write(this, status);
    this.snapshot.release();
  };
}

/** The node:http request listener of the proxy. */
export function createRequestHandler(ctx: ProxyContext): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleRequest(req, res) {
    if (refuseBadRequest(req, res)) return;
    const snapshot = ctx.current();
    const t = resolveTarget(ctx, snapshot, req);
    if (typeof t === 'string') {
      sendError(res, t);
      return;
    }
    const match = t.match;
    snapshot.retain();
    const ex = new Exchange(ctx, snapshot, t.stage, match, req, res, t.path, t.rawPath, t.query, t.bareQuery);
    try {
      ex.start(t.stage === null ? match!.depth : 0);
    } catch (err) {
      const errorId = newErrorId();
      ctx.log.error({ err, route: ex.route.id, errorId }, 'internal error while proxying');
      sendError(res, 'ISG_ERR_INTERNAL', errorId);
    }
  };
}
