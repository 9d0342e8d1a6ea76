import { applyHeaderEdits } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { failureCode, runHeaderFilter, type RequestFailure } from '../pdk-bridge/host/phase-call.ts';
import { BeforeUpstream } from './before-upstream.ts';
import { sendError } from './errors.ts';
import { BodyFilterStream, type Buffered, type ResponseBuffer } from './response-body.ts';
import { exitResponse } from './upstream-request.ts';

type Headers = Record<string, string | string[] | undefined>;

const EMPTY = Buffer.alloc(0);

/**
 * The response's way out, whatever made it (the upstream, streamed or buffered for a response
 * phase, or a plugin's exit()): headerFilter, the status and header edits, then the headers
 * written or held for the bodyFilter; and a plugin's failure once the upstream answered. The
 * third layer of the request's Exchange (core/proxy.ts streams the upstream's body into it).
 */
export abstract class ResponseWriter extends BeforeUpstream {
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
}
