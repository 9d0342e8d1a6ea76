import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { PHASE } from './phases.ts';

/**
 * The host side of every PDK write. Plugins never touch the request or response: they
 * return operations, and this file validates each one (shape, phase, caps) and applies it.
 * Operations come from untrusted code, so nothing is assumed of them: a malformed one makes
 * the whole result a `bad_return`.
 */

/** A response header edit, kept until the response headers are written. */
export type HeaderEdit = readonly [kind: 'set' | 'add' | 'clear', name: string, value: string];

export type Exit = { status: number; body: string | null; headers: string[]; json: boolean };

/** What the operations of one phase change. */
export type OpTarget = {
  /** Headers sent upstream (lowercase names). */
  upstreamHeaders: Record<string, string | string[] | undefined>;
  upstreamPath: string;
  upstreamQuery: string;
  /** Edits for the response headers, in order; null until the first. */
  responseEdits: HeaderEdit[] | null;
  exit: Exit | null;
  /** Replacement body from bodyFilter, or null. */
  body: string | null;
};

export type LogSink = (instance: number, level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

const B = PHASE;
const BEFORE_UPSTREAM = B.REWRITE | B.ACCESS;
const RESPONSE_HEADERS = B.REWRITE | B.ACCESS | B.HEADER_FILTER;
const ALL = B.REWRITE | B.ACCESS | B.HEADER_FILTER | B.BODY_FILTER | B.LOG;

/** Operation name -> phases that may issue it. */
export const OP_PHASES: Readonly<Record<string, number>> = {
  'sq.set': BEFORE_UPSTREAM,
  'sq.add': BEFORE_UPSTREAM,
  'sq.clear': BEFORE_UPSTREAM,
  'sq.path': BEFORE_UPSTREAM,
  'sq.query': BEFORE_UPSTREAM,
  'rs.set': RESPONSE_HEADERS,
  'rs.add': RESPONSE_HEADERS,
  'rs.clear': RESPONSE_HEADERS,
  'rs.body': B.BODY_FILTER,
  exit: BEFORE_UPSTREAM,
  log: ALL,
};

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
const BAD_PATH = /[\s#?\0]/;
const BAD_QUERY = /[\s#\0]/;
const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);

/** Headers that only the gateway manages: a plugin changing them would break framing. */
const MANAGED = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length',
]);

function headerName(v: unknown): string | null {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256 || !TOKEN.test(v)) return null;
  const lower = v.toLowerCase();
  return MANAGED.has(lower) ? null : lower;
}

function headerValue(v: unknown, name: string): v is string {
  return typeof v === 'string' && v.length + name.length <= OUTPUT_CAPS.maxHeaderBytes && !BAD_VALUE.test(v);
}

/**
 * Validates and applies `ops` issued in `phase`. Returns null on success, or a description
 * of the first invalid operation (nothing after it is applied; the caller treats the result
 * as a bad_return).
 */
export function applyOps(ops: readonly unknown[], phase: number, t: OpTarget, log: LogSink): string | null {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (!Array.isArray(op) || typeof op[0] !== 'string') return `operation ${i} is not [name, ...args]`;
    const kind = op[0];
    const allowed = OP_PHASES[kind];
    if (allowed === undefined) return `operation ${i} has unknown name`;
    if ((allowed & phase) === 0) return `operation ${kind} is not allowed in this phase`;
    switch (kind) {
      case 'sq.set':
      case 'sq.add': {
        const name = headerName(op[1]);
        if (name === null) return `${kind}: invalid or gateway-managed header name`;
        if (!headerValue(op[2], name)) return `${kind}: invalid header value for ${name}`;
        const h = t.upstreamHeaders;
        const prev = h[name];
        if (kind === 'sq.set' || prev === undefined) h[name] = op[2];
        else h[name] = Array.isArray(prev) ? [...prev, op[2]] : [prev, op[2]];
        break;
      }
      case 'sq.clear': {
        const name = headerName(op[1]);
        if (name === null) return `${kind}: invalid or gateway-managed header name`;
        delete t.upstreamHeaders[name];
        break;
      }
      case 'sq.path': {
        const p = op[1];
        if (typeof p !== 'string' || p[0] !== '/' || p.length > 8192 || BAD_PATH.test(p)) return 'sq.path: path must start with "/" and hold no spaces, "?" or "#"';
        t.upstreamPath = p;
        break;
      }
      case 'sq.query': {
        const q = op[1];
        if (typeof q !== 'string' || q.length > 8192 || BAD_QUERY.test(q)) return 'sq.query: invalid query string';
        t.upstreamQuery = q;
        break;
      }
      case 'rs.set':
      case 'rs.add':
      case 'rs.clear': {
        const name = headerName(op[1]);
        if (name === null) return `${kind}: invalid or gateway-managed header name`;
        const value = kind === 'rs.clear' ? '' : op[2];
        if (kind !== 'rs.clear' && !headerValue(value, name)) return `${kind}: invalid header value for ${name}`;
        (t.responseEdits ??= []).push([kind === 'rs.set' ? 'set' : kind === 'rs.add' ? 'add' : 'clear', name, value as string]);
        break;
      }
      case 'rs.body': {
        const b = op[1];
        if (typeof b !== 'string' || b.length > OUTPUT_CAPS.maxBodyBytes) return 'rs.body: body must be a string within the body cap';
        t.body = b;
        break;
      }
      case 'exit': {
        const [, status, body, headers, json] = op;
        if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return 'exit: invalid status';
        if (body !== null && (typeof body !== 'string' || body.length > OUTPUT_CAPS.maxBodyBytes)) return 'exit: body must be a string within the body cap';
        if (!Array.isArray(headers) || headers.length % 2 !== 0 || headers.length > 200) return 'exit: invalid headers';
        const hs: string[] = [];
        for (let k = 0; k < headers.length; k += 2) {
          const name = headerName(headers[k]);
          if (name === null || !headerValue(headers[k + 1], name)) return 'exit: invalid header';
          hs.push(name, headers[k + 1]);
        }
        t.exit = { status, body, headers: hs, json: json === true };
        return null; // nothing after an exit counts
      }
      case 'log': {
        const [, inst, level, message] = op;
        if (typeof inst !== 'number' || !LOG_LEVELS.has(level) || typeof message !== 'string') return 'log: invalid log line';
        log(inst, level, message.length > 4096 ? message.slice(0, 4096) : message);
        break;
      }
    }
  }
  return null;
}

/** Applies response header edits to a header object (lowercase names). */
export function applyHeaderEdits(headers: Record<string, string | string[] | undefined>, edits: readonly HeaderEdit[]): void {
  for (const [kind, name, value] of edits) {
    if (kind === 'set') headers[name] = value;
    else if (kind === 'clear') delete headers[name];
    else {
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
  }
}
