import { sendError } from './errors.ts';
import { ExchangeState, NO_BODY, STREAMED } from './exchange-state.ts';
import { acceptsTrailers } from './headers.ts';
import { failureCode, newErrorId, runBeforeUpstream, type RequestFailure } from '../pdk-bridge/host/phase-call.ts';
import { readClientBody, type ClientBody } from './request-body.ts';
import { runRewrite } from './rewrite-first.ts';
import { shed } from './shed.ts';
import { newTarget, upstreamHeaders } from './upstream-request.ts';

/**
 * The request before anything goes upstream: shedding, the client's body when a plugin reads
 * it, the tenant's rewrite (then routing), the route's access chain; then the request goes
 * upstream (dispatch, core/proxy.ts), or a plugin's exit() is answered (sendExit,
 * core/response-writing.ts). The second layer of the request's Exchange.
 */
export abstract class BeforeUpstream extends ExchangeState {
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

  /** Sends the request upstream, as the plugins left it (core/proxy.ts). */
  abstract dispatch(): void;

  /** Answers with a plugin's exit() (core/response-writing.ts). */
  abstract sendExit(): void;
}
