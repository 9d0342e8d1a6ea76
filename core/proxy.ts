import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { newErrorId } from '../pdk-bridge/host/phase-call.ts';
import { sendError } from './errors.ts';
import { STREAMED } from './exchange-state.ts';
import { appendVia, endToEnd } from './headers.ts';
import type { ProxyContext } from './proxy-context.ts';
import { refuseBadRequest } from './request-checks.ts';
import { resolveTarget } from './request-target.ts';
import { ResponseBuffer } from './response-body.ts';
import { ResponseWriter } from './response-writing.ts';
import { dispatchUpstream, retryable } from './upstream-choice.ts';
import { upstreamTarget } from './upstream-request.ts';

type Headers = Record<string, string | string[] | undefined>;

export type { ProxyContext } from './proxy-context.ts';

/** Reads an over-cap client body to its end and drops it (its first part was already read). */
function drain(body: AsyncIterable<Buffer>): void {
  void (async () => {
    for await (const _ of body);
  })().catch(() => {}); // the client went away: nothing to drop
}

/**
 * One proxied request. Its layers, each a class of its own file, its methods shared on the
 * prototypes (one object per request, nothing allocated per layer): ExchangeState (its
 * fields and the bookkeeping when it closes), BeforeUpstream (the phases before the
 * upstream), ResponseWriter (headerFilter, the headers, the bodyFilter), and this last one:
 * the upstream exchange, an undici dispatch handler, so the body streams both ways without
 * buffering.
 */
class Exchange extends ResponseWriter implements Dispatcher.DispatchHandler {
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
