import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { pino } from 'pino';
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

type Destination = ReturnType<typeof pino.destination>;

/**
 * Lines are handed to the destination in pieces of about 3 KB, or every FLUSH_MS when
 * fewer come: each write is a trip through libuv's thread pool (a thread woken, a
 * syscall, a wake-up of the event loop), measured at tens of microseconds on a busy core,
 * so one write per request, or even one per event-loop turn, costs more than the line.
 * Pieces, and so each write() sonic-boom makes of them (maxWrite), stay under PIPE_BUF
 * (4096 bytes): the lines of several workers sharing one stdout pipe never interleave.
 */
const PIECE_CHARS = 3000;
const FLUSH_MS = 50;
const PIPE_BUF = 4096;

/**
 * The access log: one JSON line per proxied request, written after the response with
 * pino's asynchronous destination (sonic-boom). `log.access` in the config: true (stdout),
 * a file path (appended), or false / "off".
 *
 * @example
 *   const log = AccessLog.open(true);     // stdout
 *   log?.write(exchange, 200);            // from Exchange.onClose
 *   await log?.close();                   // on stop: nothing written is lost
 */
export class AccessLog {
  readonly #dest: Destination;
  readonly #toFile: boolean;
  #pending = '';
  #timer: NodeJS.Timeout | null = null;
  /** Handed lines to the destination that it has not finished writing. */
  #busy = false;
  #broken = false;
  /** Bytes a keep-alive socket had sent before the current response. */
  readonly #sent = new WeakMap<Socket, number>();
  #second = -1;
  #secondIso = '';

  private constructor(dest: Destination, toFile: boolean) {
    this.#dest = dest;
    this.#toFile = toFile;
    dest.on('drain', () => (this.#busy = false));
    // A full disk or a closed pipe must not take the gateway down: say so once, stop writing.
    dest.on('error', (err: Error) => {
      if (this.#broken) return;
      this.#broken = true;
      this.#busy = false;
      process.stderr.write(`isogate: the access log cannot be written, it is off from now on: ${err.message}\n`);
    });
  }

  /** Null when the access log is off. */
  static open(where: boolean | string): AccessLog | null {
    if (where === false || where === 'off') return null;
    const toFile = typeof where === 'string';
    const dest = pino.destination(toFile ? { dest: where, sync: false, append: true, mkdir: true, maxWrite: PIPE_BUF } : { fd: 1, sync: false, maxWrite: PIPE_BUF });
    return new AccessLog(dest, toFile);
  }

  /** One line for a finished request; `status` is what the client got (499: it went away first). */
  write(ex: AccessRecord, status: number): void {
    const now = performance.now();
    const route = ex.route;
    const req = ex.req;
    const socket = ex.socket;
    const total = socket.bytesWritten ?? 0;
    const bytes = total - (this.#sent.get(socket) ?? 0);
    this.#sent.set(socket, total);
    const state = ex.state;
    // Tenant and route names match the config schema's name pattern, and llhttp accepts
    // only known method tokens: none of them needs JSON escaping. The path may.
    let line = `{"level":"info","time":"${this.#time()}","msg":"access","tenant":"${route.tenant}","route":"${route.name}","method":"${req.method}","path":${JSON.stringify(ex.path)},"status":${status},"bytes":${bytes},"latencies":{"request":${ms(now - ex.started)},"proxy":${ex.upstreamMs < 0 ? 'null' : ms(ex.upstreamMs)},"plugins":${ms(state.pluginMs)}}`;
    if (state.errorId !== '') line += `,"errorId":"${state.errorId}"`;
    this.#pending += line + '}\n';
    if (this.#pending.length >= PIECE_CHARS) this.#flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(this.#flush, FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Writes what is pending and waits until the destination has it all; closes a file. */
  async close(): Promise<void> {
    // Close handlers of the last responses may still be queued behind the server's close.
    await new Promise((resolve) => setImmediate(resolve));
    this.#flush();
    const dest = this.#dest;
    // sonic-boom emits 'drain' once everything handed to it is written.
    if (this.#busy) await new Promise((resolve) => dest.once('drain', resolve));
    if (this.#toFile) dest.end();
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
    this.#busy = true;
    this.#dest.write(piece);
  };

  /** ISO 8601 time of now; the part up to the seconds is built once a second. */
  #time(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#secondIso = new Date(second * 1000).toISOString().slice(0, 20);
    }
    const milli = now - second * 1000;
    return `${this.#secondIso}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  }
}

/** Milliseconds with 3 decimals. */
function ms(v: number): number {
  return Math.round(v * 1000) / 1000;
}
