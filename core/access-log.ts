import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RuntimeRoute } from './route.ts';

/** What the access log reads of a finished request: core/proxy.ts's Exchange has these fields. */
export type AccessRecord = {
  readonly route: RuntimeRoute;
  readonly req: IncomingMessage;
  /** The client connection (req.socket may be gone by the end). */
  readonly socket: Socket;
  /** The routed (normalised) path, without the query: a query string often carries secrets. */
  readonly path: string;
  /** performance.now() when the request arrived. */
  readonly started: number;
  /** Request sent upstream to its response headers, in ms; -1 when nothing went upstream. */
  readonly upstreamMs: number;
  readonly state: { readonly pluginMs: number; readonly errorId: string };
};

/**
 * Lines are written in pieces of whole lines, about 3 KB, or every FLUSH_MS when fewer
 * come, with one write() from the main thread. A write through libuv's thread pool (what
 * sonic-boom does) wakes a thread on the gateway's core, which preempts the main thread, and
 * its completion wakes the event loop early: measured at 15-20 µs per request at ~10k req/s,
 * against ~1 µs for the synchronous write (docs/performance-findings.md item 6). A pipe never
 * blocks the gateway: stdout is non-blocking (Node makes a stdout pipe so) and a full pipe
 * answers EAGAIN. What it refused waits in a backlog, in order, with the pieces that come
 * after it, and is written every RETRY_MS, still synchronously, as far as the pipe takes it
 * (a 64 KB pipe every 5 ms is 12.8 MB/s, ~58k lines of 220 bytes a second). Each EAGAIN is
 * a thrown error (a few µs): while the reader takes nothing the wait doubles, up to
 * RETRY_MAX_MS (sonic-boom's own retry), and falls back to RETRY_MS once it writes. The
 * sonic-boom fallback this replaced went through the thread pool for as long as the pipe
 * was behind, which under a slow reader was most of the time: about 4 % of the main thread
 * in proxy-0 profiles. A file (the page cache) is written the same way; it never answers EAGAIN.
 * Pieces stay under PIPE_BUF (4096 bytes) when their lines do: a write that small to a pipe
 * is atomic (all of it or EAGAIN), so the lines of several workers sharing one stdout pipe
 * never interleave.
 */
const PIECE_CHARS = 3000;
const FLUSH_MS = 50;
const RETRY_MS = 5;
const RETRY_MAX_MS = 100;

/**
 * The access log: one JSON line per proxied request, collected after the response and
 * written in pieces (see PIECE_CHARS). `log.access` in the config: true (stdout), a file
 * path (appended), or false / "off".
 *
 * @example
 *   const log = AccessLog.open(true);     // stdout
 *   log?.write(exchange, 200, performance.now()); // from Exchange.onClose
 *   await log?.close();                   // on stop: nothing written is lost
 */
export class AccessLog {
  /** Where pieces are written synchronously. */
  readonly #fd: number;
  readonly #toFile: boolean;
  #pending = '';
  #timer: NodeJS.Timeout | null = null;
  /** What the pipe refused (EAGAIN), oldest first; the first may be the rest of a piece written in part. */
  #backlog: Buffer[] = [];
  #backlogBytes = 0;
  readonly #maxBacklogBytes: number;
  /** Lines dropped since the backlog reached its bound (said on stderr when it starts and when it ends). */
  #dropped = 0;
  #retry: NodeJS.Timeout | null = null;
  #retryMs = RETRY_MS;
  /** close() waiting for the backlog to be written. */
  #onEmpty: (() => void) | null = null;
  #broken = false;
  /** Bytes a keep-alive socket had sent before the current response. */
  readonly #sent = new WeakMap<Socket, number>();
  #second = -1;
  #secondIso = '';
  #milli = -1;
  #milliIso = '';

  private constructor(fd: number, toFile: boolean, maxBacklogBytes: number) {
    this.#fd = fd;
    this.#toFile = toFile;
    this.#maxBacklogBytes = maxBacklogBytes;
  }

  /** Null when the access log is off. `maxBacklogBytes`: what may wait behind a full pipe before lines are dropped (log.accessBacklogMb). */
  static open(where: boolean | string, maxBacklogBytes = 64 * 1024 * 1024): AccessLog | null {
    if (where === false || where === 'off') return null;
    if (typeof where === 'string') {
      let fd = -1;
      try {
        mkdirSync(dirname(where), { recursive: true });
        fd = openSync(where, 'a');
      } catch (err) {
        const log = new AccessLog(-1, false, 0);
        log.#fail(err as Error);
        return log;
      }
      return new AccessLog(fd, true, maxBacklogBytes);
    }
    // Touching process.stdout makes a stdout pipe non-blocking (libuv's pipe handle): a
    // full pipe then answers EAGAIN instead of stalling the gateway.
    void process.stdout;
    return new AccessLog(1, false, maxBacklogBytes);
  }

  /** One line for a finished request; `status` is what the client got (499: it went away first), `now` performance.now() as it closed. */
  write(ex: AccessRecord, status: number, now: number): void {
    const socket = ex.socket;
    const total = socket.bytesWritten ?? 0;
    const bytes = total - (this.#sent.get(socket) ?? 0);
    this.#sent.set(socket, total);
    const state = ex.state;
    // llhttp accepts only known method tokens: none needs JSON escaping. The path may.
    let line = `{"level":"info","time":"${this.#time()}${ex.route.accessLogHead}${ex.req.method}","path":${jsonPath(ex.path)},"status":${status},"bytes":${bytes},"latencies":{"request":${formatMs(now - ex.started)},"proxy":${ex.upstreamMs < 0 ? 'null' : formatMs(ex.upstreamMs)},"plugins":${formatMs(state.pluginMs)}}`;
    line += state.errorId === '' ? '}\n' : `,"errorId":"${state.errorId}"}\n`;
    // Whole lines per piece: a piece that fits in PIPE_BUF is written atomically.
    if (this.#pending.length + line.length > PIECE_CHARS) this.#flush();
    this.#pending += line;
    if (this.#timer === null) {
      this.#timer = setTimeout(this.#flush, FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Writes what is pending and waits until it is all written; closes a file. */
  async close(): Promise<void> {
    // Close handlers of the last responses may still be queued behind the server's close.
    await new Promise((resolve) => setImmediate(resolve));
    this.#flush();
    if (this.#backlog.length > 0) await new Promise<void>((resolve) => (this.#onEmpty = resolve));
    if (this.#toFile) closeSync(this.#fd);
  }

  #flush = (): void => {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#pending === '') return;
    const piece = this.#pending;
    this.#pending = '';
    if (this.#broken) return;
    const bytes = Buffer.from(piece);
    if (this.#backlogBytes + bytes.length > this.#maxBacklogBytes && this.#backlog.length > 0) {
      // A reader that stopped must not grow the gateway until it runs out of memory.
      if (this.#dropped === 0) process.stderr.write(`isogate: the access log's reader is behind by ${Math.round(this.#backlogBytes / 1024)} KB (log.accessBacklogMb): lines are dropped until it catches up\n`);
      for (let i = piece.indexOf('\n'); i !== -1; i = piece.indexOf('\n', i + 1)) this.#dropped++;
      return;
    }
    this.#backlog.push(bytes);
    this.#backlogBytes += bytes.length;
    // behind a backlog the retry writes it: a write now would most likely meet EAGAIN again
    // (a thrown error each time, a few µs)
    if (this.#backlog.length === 1) this.#writeBacklog();
  };

  /** Writes the backlog, oldest first, until the pipe refuses more; then retries in RETRY_MS, or later while the reader takes nothing. */
  #writeBacklog(): void {
    const backlog = this.#backlog;
    let wrote = false;
    while (backlog.length > 0) {
      const bytes = backlog[0];
      let done = 0;
      try {
        done = writeSync(this.#fd, bytes);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return this.#fail(err as Error);
      }
      if (done < bytes.length) {
        if (done > 0) {
          backlog[0] = bytes.subarray(done);
          this.#backlogBytes -= done;
        }
        // a reader that took nothing since the last try is given twice as long, up to RETRY_MAX_MS
        this.#retryMs = wrote || done > 0 ? RETRY_MS : Math.min(this.#retryMs * 2, RETRY_MAX_MS);
        if (this.#retry === null) this.#retry = setTimeout(this.#retryBacklog, this.#retryMs);
        return;
      }
      wrote = true;
      backlog.shift();
      this.#backlogBytes -= bytes.length;
    }
    this.#retryMs = RETRY_MS;
    if (this.#dropped > 0) {
      process.stderr.write(`isogate: the access log's reader caught up; ${this.#dropped} lines were dropped\n`);
      this.#dropped = 0;
    }
    const waiting = this.#onEmpty;
    this.#onEmpty = null;
    waiting?.();
  }

  #retryBacklog = (): void => {
    this.#retry = null;
    if (!this.#broken) this.#writeBacklog();
  };

  /** A full disk or a closed pipe must not take the gateway down: say so once, stop writing. */
  #fail(err: Error): void {
    if (this.#broken) return;
    this.#broken = true;
    this.#backlog = [];
    this.#backlogBytes = 0;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const waiting = this.#onEmpty;
    this.#onEmpty = null;
    waiting?.();
    process.stderr.write(`isogate: the access log cannot be written, it is off from now on: ${err.message}\n`);
  }

  /** ISO 8601 time of now, with milliseconds; the part up to the seconds is built once a second, the whole once a millisecond. */
  #time(): string {
    const now = Date.now();
    if (now === this.#milli) return this.#milliIso;
    this.#milli = now;
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#secondIso = new Date(second * 1000).toISOString().slice(0, 20);
    }
    const milli = now - second * 1000;
    return (this.#milliIso = this.#secondIso + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z');
  }
}

/**
 * What a route's lines have in common after the time, up to the method: built once per
 * config (core/snapshot-builder.ts), as JSON.stringify would write the names.
 */
export function accessLogHead(tenant: string, route: string): string {
  return `","msg":"access","tenant":${JSON.stringify(tenant)},"route":${JSON.stringify(route)},"method":"`;
}

/** JSON.stringify(path), without the call for a path of printable ASCII that needs no escape (the common one). */
function jsonPath(path: string): string {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 /* " */ || c === 0x5c /* \ */) return JSON.stringify(path);
  }
  return '"' + path + '"';
}

/**
 * Milliseconds with at most 3 decimals, as String(Math.round(v * 1000) / 1000) writes them,
 * from the integer microseconds: a double's shortest decimal costs about three times an
 * integer's (V8), and a line has three of them.
 */
export function formatMs(v: number): string {
  const us = Math.round(v * 1000);
  if (!(us >= 0 && us < 0x40000000)) return String(us / 1000); // -0, negative or huge: as before
  const int = Math.floor(us / 1000);
  const f = us - int * 1000;
  if (f === 0) return '' + int;
  if (f % 10 !== 0) return int + (f < 10 ? '.00' : f < 100 ? '.0' : '.') + f;
  if (f % 100 !== 0) return int + (f < 100 ? '.0' : '.') + f / 10;
  return int + '.' + f / 100;
}
