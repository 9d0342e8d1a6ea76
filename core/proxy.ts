import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { AccessLog } from './access-log.ts';
import { applyHeaderEdits, type OpTarget } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { ERRORS, errorBody, type ErrorCode } from './errors.ts';
import { HOP_BY_HOP, dropConnectionListed, endToEnd } from './headers.ts';
import { runPhase, type PipelineContext, type RequestFailure, type RequestState } from './pipeline.ts';
import type { RuntimeRoute } from './route.ts';
import { normalizePath } from './router/router.ts';
import type { Snapshot } from './snapshot.ts';

type Headers = Record<string, string | string[] | undefined>;

/** What the proxy needs of the gateway: the current snapshot and the pipeline's context. */
export type ProxyContext = PipelineContext & {
  current(): Snapshot;
  /** Queues the log phase of a finished request (run after the response, in batches). */
  queueLog(route: RuntimeRoute, reqJson: string, phaseJson: string, ctx: string): void;
  countUnmatched(): void;
  /** null when the access log is off. */
  readonly accessLog: AccessLog | null;
};

const BEFORE_UPSTREAM = [PHASE.REWRITE, PHASE.ACCESS] as const;

/** Static error bodies are encoded once. */
const STATIC_ERRORS = new Map<ErrorCode, Buffer>(
  (Object.keys(ERRORS) as ErrorCode[]).map((code) => [code, Buffer.from(errorBody(code))]),
);

export function sendError(res: ServerResponse, code: ErrorCode, errorId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorId === undefined ? STATIC_ERRORS.get(code)! : Buffer.from(errorBody(code, errorId));
  const headers: Headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  if (errorId !== undefined) headers['x-isogate-error-id'] = errorId;
  res.writeHead(ERRORS[code].status, headers);
  res.end(body);
}

function failureCode(f: RequestFailure): ErrorCode {
  return f.fault.outcome === 'breaker_open' || f.fault.outcome === 'quarantined' ? 'ISG_ERR_PLUGIN_UNAVAILABLE' : 'ISG_ERR_PLUGIN_FAILED';
}

/** Request headers as sent upstream: end-to-end only, with the X-Forwarded-* set. */
function upstreamHeaders(req: IncomingMessage, route: RuntimeRoute): Headers {
  const src = req.headers;
  const out: Headers = {};
  for (const name in src) {
    if (!HOP_BY_HOP.has(name) && name !== 'expect') out[name] = src[name];
  }
  dropConnectionListed(out, src.connection);
  const ip = req.socket.remoteAddress ?? '';
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff === undefined || xff === '' ? ip : `${xff}, ${ip}`;
  out['x-forwarded-proto'] = 'http';
  if (src.host !== undefined) out['x-forwarded-host'] = src.host;
  if (!route.service.preserveHost) out.host = route.service.hostHeader;
  return out;
}

/** The request snapshot handed to plugins (see pdk-bridge/README.md). */
function requestJson(req: IncomingMessage, path: string, query: string): string {
  return JSON.stringify({ m: req.method, p: path, q: query, h: req.headers, ip: req.socket.remoteAddress ?? '', s: 'http' });
}

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
  readonly route: RuntimeRoute;
  readonly ctx: ProxyContext;
  readonly snapshot: Snapshot;
  readonly started = performance.now();
  readonly path: string;
  readonly query: string;
  /** Request snapshot for plugins, built on first use. */
  reqJson = '';
  state: RequestState = { ctx: '', pluginMs: 0, errorId: '' };
  target: OpTarget | null = null;
  controller: Dispatcher.DispatchController | null = null;
  upstreamStarted = 0;
  /** Request sent upstream to its response headers, in ms (-1: nothing went upstream). */
  upstreamMs = -1;
  /** bodyFilter: the response body collected so far. */
  chunks: Buffer[] | null = null;
  bufferedHeaders: Headers | null = null;
  bufferedStatus = 0;
  closed = false;
  /** Set once the gateway answered on its own (a plugin failed after the upstream began). */
  answered = false;

  constructor(ctx: ProxyContext, snapshot: Snapshot, route: RuntimeRoute, req: IncomingMessage, res: ServerResponse, path: string, query: string) {
    this.ctx = ctx;
    this.snapshot = snapshot;
    this.route = route;
    this.req = req;
    this.res = res;
    this.socket = req.socket;
    this.path = path;
    this.query = query;
    res.once('close', this.onClose);
  }

  requestJson(): string {
    if (this.reqJson === '') this.reqJson = requestJson(this.req, this.path, this.query);
    return this.reqJson;
  }

  start(prefix: string): void {
    const route = this.route;
    if (route.sandbox !== null && !route.sandbox.budget.allow()) {
      this.throttled();
      return;
    }
    const target: OpTarget = {
      upstreamHeaders: upstreamHeaders(this.req, route),
      upstreamPath: route.stripPath ? this.path.slice(prefix === '/' ? 0 : prefix.length) || '/' : this.path,
      upstreamQuery: this.query,
      responseEdits: null,
      exit: null,
      body: null,
    };
    this.target = target;
    if (route.runsAccess) {
      const reqJson = this.requestJson();
      for (const phase of BEFORE_UPSTREAM) {
        if ((route.phases & phase) === 0) continue;
        const failure = runPhase(this.ctx, route, phase, reqJson, '', this.state, target);
        if (failure !== null) {
          sendError(this.res, failureCode(failure), failure.errorId);
          return;
        }
        if (target.exit !== null) {
          this.sendExit();
          return;
        }
      }
    }
    const base = route.service.basePath;
    let path = base === '' ? target.upstreamPath : target.upstreamPath === '/' ? base : base + target.upstreamPath;
    if (target.upstreamQuery !== '') path += '?' + target.upstreamQuery;
    const req = this.req;
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    this.upstreamStarted = performance.now();
    route.pool.dispatch(
      {
        path,
        method: req.method!,
        headers: target.upstreamHeaders as IncomingHttpHeaders,
        body: hasBody ? req : null,
        headersTimeout: route.service.timeoutMs,
        bodyTimeout: route.service.timeoutMs,
      },
      this,
    );
  }

  /** The tenant spent its CPU budget: a fast 503 that says when to come back. */
  throttled(): void {
    const retry = this.route.sandbox!.budget.retryAfterSeconds();
    this.route.metrics.throttled.inc();
    const body = STATIC_ERRORS.get('ISG_ERR_TENANT_THROTTLED')!;
    this.res.writeHead(503, { 'content-type': 'application/json', 'content-length': String(body.length), 'retry-after': String(retry) });
    this.res.end(body);
  }

  sendExit(): void {
    const exit = this.target!.exit!;
    const headers: Headers = {};
    for (let i = 0; i < exit.headers.length; i += 2) headers[exit.headers[i]] = exit.headers[i + 1];
    const edits = this.target!.responseEdits;
    if (edits !== null) applyHeaderEdits(headers, edits);
    const body = exit.body === null ? null : Buffer.from(exit.body);
    if (body !== null) {
      if (headers['content-type'] === undefined) headers['content-type'] = exit.json ? 'application/json' : 'text/plain; charset=utf-8';
      headers['content-length'] = String(body.length);
    } else {
      headers['content-length'] = '0';
    }
    this.res.writeHead(exit.status, headers);
    this.res.end(body);
  }

  // --- undici dispatch handler ---

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.closed) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers): void {
    if (status < 200) return; // 1xx from upstream: the final response follows
    const route = this.route;
    this.upstreamMs = performance.now() - this.upstreamStarted;
    route.metrics.upstream.observe(this.upstreamMs / 1000);
    const out = endToEnd(headers);
    if (route.runsHeaderFilter) {
      const failure = runPhase(this.ctx, route, PHASE.HEADER_FILTER, this.requestJson(), JSON.stringify({ s: status, h: out }), this.state, this.target!);
      if (failure !== null) {
        this.answered = true;
        controller.abort(new Error('plugin failed'));
        sendError(this.res, failureCode(failure), failure.errorId);
        return;
      }
    }
    const edits = this.target!.responseEdits;
    if (edits !== null) applyHeaderEdits(out, edits);
    if (route.runsBodyFilter) {
      this.chunks = [];
      this.bufferedHeaders = out;
      this.bufferedStatus = status;
      return;
    }
    this.res.writeHead(status, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.answered) return;
    if (this.chunks !== null) {
      this.chunks.push(chunk);
      return;
    }
    if (this.res.destroyed) return;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    if (this.answered) return;
    if (this.chunks !== null) {
      this.finishBuffered();
      return;
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
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
    this.ctx.log.info({ tenant: this.route.tenant, route: this.route.name, code: code ?? err.name }, `upstream error: ${err.message}`);
    // A response undici could not parse (or framed wrongly) is a bad response, not an unreachable upstream.
    const invalid = err.name === 'HTTPParserError' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code?.startsWith('HPE_') === true;
    sendError(this.res, timeout ? 'ISG_ERR_UPSTREAM_TIMEOUT' : invalid ? 'ISG_ERR_UPSTREAM_BAD_RESPONSE' : 'ISG_ERR_UPSTREAM_UNAVAILABLE');
  }

  finishBuffered(): void {
    const route = this.route;
    const body = Buffer.concat(this.chunks!);
    this.chunks = null;
    const headers = this.bufferedHeaders!;
    const phaseJson = JSON.stringify({ s: this.bufferedStatus, h: headers });
    // The body crosses as a plain string argument, not inside the JSON (no escaping of 64 KB).
    const failure = runPhase(this.ctx, route, PHASE.BODY_FILTER, this.requestJson(), phaseJson, this.state, this.target!, body.toString('utf8'));
    if (failure !== null) {
      sendError(this.res, failureCode(failure), failure.errorId);
      return;
    }
    const replaced = this.target!.body;
    const out = replaced === null ? body : Buffer.from(replaced);
    delete headers['content-encoding'];
    headers['content-length'] = String(out.length);
    this.res.writeHead(this.bufferedStatus, headers);
    this.res.end(out);
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
    if (route.runsLog) {
      this.ctx.queueLog(route, this.requestJson(), JSON.stringify({ s: status, h: res.getHeaders(), l: performance.now() - this.started }), this.state.ctx);
    }
    this.ctx.accessLog?.write(this, status);
    this.snapshot.release();
  };
}

/** Splits `/a/b?x=1` into path and query; null for a target that is not origin-form. */
function splitTarget(url: string): [string, string] | null {
  if (url.charCodeAt(0) !== 47 /* / */) {
    if (!url.startsWith('http://') && !url.startsWith('https://')) return null;
    const slash = url.indexOf('/', url.indexOf('//') + 2);
    if (slash < 0) return ['/', ''];
    url = url.slice(slash);
  }
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
}

/** The node:http request listener of the proxy. */
export function createRequestHandler(ctx: ProxyContext): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleRequest(req, res) {
    const snapshot = ctx.current();
    const target = splitTarget(req.url ?? '');
    if (target === null) {
      sendError(res, 'ISG_ERR_BAD_REQUEST');
      return;
    }
    const path = normalizePath(target[0]);
    const match = snapshot.router.match(req.headers.host, req.method!, path);
    if (match === null) {
      ctx.countUnmatched();
      sendError(res, 'ISG_ERR_NO_ROUTE');
      return;
    }
    snapshot.retain();
    const ex = new Exchange(ctx, snapshot, match.route, req, res, path, target[1]);
    try {
      ex.start(match.prefix);
    } catch (err) {
      ctx.log.error({ err, route: match.route.id }, 'internal error while proxying');
      sendError(res, 'ISG_ERR_INTERNAL');
    }
  };
}
