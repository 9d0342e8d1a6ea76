import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { applyHeaderEdits, type OpTarget } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/phases.ts';
import { OUTPUT_CAPS } from '../sandbox/limits.ts';
import { recordFault, runFilterPhase, runPhase, type PipelineContext, type RequestFailure, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import type { RuntimeRoute } from './route.ts';

const EMPTY = Buffer.alloc(0);

type Headers = Record<string, string | string[] | undefined>;

/** What the response-body stages need of the request's Exchange (core/proxy.ts). */
export type BodyExchange = {
  readonly ctx: PipelineContext;
  readonly route: RuntimeRoute;
  readonly res: ServerResponse;
  readonly req: IncomingMessage;
  readonly state: RequestState;
  readonly target: OpTarget | null;
  readonly controller: Dispatcher.DispatchController | null;
  /** The client went away, or the gateway answered on its own: a chunk held for coalescing is dropped. */
  readonly closed: boolean;
  readonly answered: boolean;
  requestJson(): string;
  /** Ends the request with the gateway's own answer (or cuts it when the headers are out). */
  fail(failure: RequestFailure): void;
  onDrain: () => void;
};

/**
 * Where a UTF-8 byte sequence may be cut without splitting a character: the length of
 * `b` minus the bytes of an incomplete sequence at its end (0 to 3). Bytes that are not
 * UTF-8 cut anywhere (the plugin sees U+FFFD for them).
 */
export function utf8Cut(b: Buffer): number {
  const n = b.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const c = b[n - back];
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

/** A too_large fault of the first instance of `phase`: the gateway, not a plugin call, found the excess. */
function tooLarge(ex: BodyExchange, phase: number, detail: string): RequestFailure {
  const instance = ex.route.sandbox?.program.chains[ex.state.chainId]?.[phase]?.[0] ?? -1;
  const fault = { outcome: 'too_large' as const, instance, detail };
  const errorId = recordFault(ex.ctx, ex.route, phase, fault, false);
  ex.state.errorId = errorId;
  return { fault, errorId };
}

/** A buffered response after its response phase: what headerFilter and bodyFilter go on with. */
export type Buffered = { status: number; headers: Headers; body: Buffer; upstreamText: string };

/**
 * The response phase's buffer (Kong's buffered proxying): the whole upstream body, up to
 * OUTPUT_CAPS.maxBodyBytes, for chains with a `response` handler, or a request whose
 * plugin called serviceRequest.enableBuffering().
 */
export class ResponseBuffer {
  readonly status: number;
  readonly headers: Headers;
  #chunks: Buffer[] = [];
  #bytes = 0;

  constructor(status: number, headers: Headers) {
    this.status = status;
    this.headers = headers;
  }

  /** Keeps a chunk; a failure when the body passed the cap. */
  add(ex: BodyExchange, chunk: Buffer): RequestFailure | null {
    this.#bytes += chunk.length;
    if (this.#bytes > OUTPUT_CAPS.maxBodyBytes) {
      this.#chunks = [];
      return tooLarge(ex, PHASE.RESPONSE, `upstream body over ${OUTPUT_CAPS.maxBodyBytes} bytes: too large for the response phase`);
    }
    this.#chunks.push(chunk);
    return null;
  }

  /**
   * Runs the response phase on the whole response; returns the status, headers and body to
   * go on with (headerFilter and bodyFilter still run), or the failure. A chain that waits
   * on async PDK calls returns a Promise of the same, settled when it ended (each plugin
   * within its wallMs, wait.ts); the body stays here meanwhile and nothing is sent. A chain
   * that does not wait answers synchronously: no Promise is made.
   */
  run(ex: BodyExchange): Buffered | RequestFailure | Promise<Buffered | RequestFailure> {
    const body = Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks = [];
    const upstreamText = body.toString('utf8');
    // buffered for serviceRequest.enableBuffering() alone: no response phase to run
    if ((ex.state.phases & PHASE.RESPONSE) !== 0) {
      const failure = runPhase(ex.ctx, ex.route, PHASE.RESPONSE, ex.requestJson(), JSON.stringify({ s: this.status, h: this.headers }), ex.state, ex.target!, upstreamText);
      if (failure instanceof Promise) return failure.then((f) => f ?? this.#result(ex, body, upstreamText));
      if (failure !== null) return failure;
    }
    return this.#result(ex, body, upstreamText);
  }

  /** The response as the phase's operations left it. */
  #result(ex: BodyExchange, body: Buffer, upstreamText: string): Buffered {
    const target = ex.target!;
    const headers = { ...this.headers };
    if (target.responseEdits !== null) {
      applyHeaderEdits(headers, target.responseEdits);
      target.responseEdits = null; // applied: headerFilter's edits start a new list
    }
    const out = target.body === null ? body : Buffer.from(target.body);
    target.body = null;
    delete headers.trailer; // a body with a Content-Length has no trailers
    const status = target.status ?? this.status;
    // HEAD, 204 and 304 keep the upstream's framing headers (they have no body of their own)
    if (ex.req.method !== 'HEAD' && status !== 204 && status !== 304) headers['content-length'] = String(out.length);
    return { status, headers, body: out, upstreamText };
  }
}

/**
 * Upstream chunks that arrive together (one socket read gives several: chunked framing
 * cuts a read into its chunks) are joined, up to this many bytes, and filtered in one
 * crossing, and the end of the body goes with the data it came with: the crossing's fixed
 * cost (snapshots, result, operations, a write to the client) is paid once per read, not
 * once per small chunk. Kept small: what saves crossings is joining small chunks, and a
 * plugin's string work in the isolate grows a little faster than the chunk (a 64 MB
 * isolate's young generation is ~1.4 MB), so larger joins buy nothing
 * (docs/performance-findings.md). A larger upstream chunk goes alone, as before.
 */
export const COALESCE_BYTES = 16 * 1024;

/** The end of the tick in which chunks were held: they are filtered then (nothing waits for more data). */
function flushHeld(s: BodyFilterStream, ex: BodyExchange): void {
  s.flush(ex, false);
}

/**
 * A streaming bodyFilter (for chains that have one): each upstream read goes through the
 * chain as it arrives (its chunks joined, up to COALESCE_BYTES, at the end of the tick they
 * came in), cut at UTF-8 character boundaries, and what the chain leaves is written at
 * once, with backpressure. Gateway memory stays one read per request. The end of the body
 * travels with the data that came with it (no extra call for an empty last chunk). The
 * headers are written with the first output, so a filter that fails on its first chunk
 * still gets the client a clean 500. A chunk no plugin changed goes out byte for byte. An
 * exit()'s body is one last chunk.
 */
export class BodyFilterStream {
  readonly status: number;
  readonly headers: Headers;
  readonly phaseJson: string;
  #tail: Buffer | null = null;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #tickQueued = false;
  #sent = 0;
  #headersOut = false;
  /** A body (not HEAD, 204 or 304) whose length may be told when it all came in one call. */
  #mayFixLength: boolean;
  done = false;

  /** `exit`: the response is a plugin's exit() (response.getSource() reads 'exit'). */
  constructor(status: number, headers: Headers, head: boolean, exit: boolean) {
    this.#mayFixLength = !head && status !== 204 && status !== 304;
    // The filters decide the length: Content-Length goes, the body is chunked (or, to an
    // HTTP/1.0 client, ends with the connection); HEAD, 204 and 304 keep theirs (no body).
    // Trailers are not relayed under a filter.
    if (this.#mayFixLength) delete headers['content-length'];
    delete headers.trailer;
    this.status = status;
    this.headers = headers;
    this.phaseJson = JSON.stringify(exit ? { s: status, h: headers, src: 'exit' } : { s: status, h: headers });
  }

  /**
   * An upstream chunk: held until the end of this tick (more of the same read, or its end,
   * may follow); what is held is filtered first when this one would take it past
   * COALESCE_BYTES. So a call gets at most COALESCE_BYTES, or one larger chunk alone.
   */
  push(ex: BodyExchange, data: Buffer): void {
    if (this.done) return;
    if (this.#heldBytes > 0 && this.#heldBytes + data.length > COALESCE_BYTES && !this.flush(ex, false)) return;
    this.#held.push(data);
    this.#heldBytes += data.length;
    if (!this.#tickQueued) {
      this.#tickQueued = true;
      process.nextTick(flushHeld, this, ex);
    }
  }

  /**
   * Filters what is held (`last`: with the end of the body); false when the request ended
   * on a failure. Nothing is filtered for a request that ended meanwhile (the client left,
   * the upstream failed, the gateway answered).
   */
  flush(ex: BodyExchange, last: boolean): boolean {
    this.#tickQueued = false;
    const held = this.#held;
    const bytes = this.#heldBytes;
    if (bytes === 0 && !last) return !this.done;
    this.#held = [];
    this.#heldBytes = 0;
    if (this.done || ex.closed || ex.answered || ex.res.destroyed || ex.res.writableEnded) return false;
    return this.chunk(ex, held.length === 1 ? held[0] : held.length === 0 ? EMPTY : Buffer.concat(held, bytes), last);
  }

  /** Filters one chunk (`last`: the end of the body); false when the request ended on a failure. */
  chunk(ex: BodyExchange, data: Buffer, last: boolean): boolean {
    let bytes = this.#tail === null ? data : Buffer.concat([this.#tail, data]);
    this.#tail = null;
    if (!last) {
      const cut = utf8Cut(bytes);
      if (cut < bytes.length) {
        this.#tail = Buffer.from(bytes.subarray(cut));
        bytes = bytes.subarray(0, cut);
      }
      if (bytes.length === 0) return true;
    }
    const target = ex.target!;
    target.body = null;
    const failure = runFilterPhase(ex.ctx, ex.route, PHASE.BODY_FILTER, ex.requestJson(), this.phaseJson, ex.state, target, bytes.toString('utf8'), last);
    if (failure !== null) {
      this.done = true;
      ex.fail(failure);
      return false;
    }
    const out = target.body === null ? bytes : Buffer.from(target.body);
    target.body = null;
    this.#sent += out.length;
    const cap = ex.route.proxy.bodies.maxFilteredBodyBytes;
    if (this.#sent > cap) {
      this.done = true;
      ex.fail(tooLarge(ex, PHASE.BODY_FILTER, `bodyFilter sent more than ${cap} bytes in one response`));
      return false;
    }
    const res = ex.res;
    if (!this.#headersOut) {
      this.#headersOut = true;
      // the whole body in one call (a response phase before, or a short body): its length is known
      if (last && this.#mayFixLength) this.headers['content-length'] = String(out.length);
      res.writeHead(this.status, this.headers);
    }
    if (last) {
      this.done = true;
      res.end(out);
      return true;
    }
    if (out.length > 0 && !res.write(out)) {
      ex.controller?.pause();
      res.once('drain', ex.onDrain);
    }
    return true;
  }
}
