import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { PHASE, PHASE_MASKS } from './phases.ts';
import { authOf, checkAuth, type Authenticated } from './auth.ts';
import type { ConsumerIndex } from '../../core/consumers/index.ts';

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
  /**
   * The body the phase's plugins set, or null: in rewrite/access the body sent upstream
   * (serviceRequest.setRawBody), in response the body sent to the client, in bodyFilter
   * this chunk. The caller takes it after each call.
   */
  body: string | null;
  /** serviceRequest.setMethod / setScheme, or null: the client's method, the service's scheme. */
  method?: string | null;
  scheme?: 'http' | 'https' | null;
  /** service.setTarget: "host:port" (IPv6 in brackets), one of `targets`; null: the service's own. */
  upstream?: string | null;
  /** The "host:port" a plugin may send the request to (the service's own and its `targets`); absent: none. */
  targets?: ReadonlySet<string>;
  /** service.setRetries, or null: the service's. */
  retries?: number | null;
  /** service.setTimeouts: connect, write, read (ms), or null: the service's. */
  timeouts?: readonly [number, number, number] | null;
  /** response.setStatus (response, headerFilter), or null. */
  status?: number | null;
  /** serviceRequest.enableBuffering() was called: the upstream response is buffered whole. */
  buffering?: boolean;
  /** The tenant's consumers, which client.authenticate's operations are checked against (absent: none). */
  consumers?: ConsumerIndex;
  /** Set by the last client.authenticate applied. */
  auth?: Authenticated | null;
};

/** A target for calls that may only log (the log phase, the lines of a failed call): nothing else passes validation there. */
export const LOG_ONLY_TARGET: OpTarget = { upstreamHeaders: {}, upstreamPath: '/', upstreamQuery: '', responseEdits: null, exit: null, body: null, status: null, buffering: false };

export type LogSink = (instance: number, level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;

const B = PHASE;
const BEFORE_UPSTREAM = PHASE_MASKS.BEFORE_UPSTREAM;
const RESPONSE_HEADERS = PHASE_MASKS.HEADERS_WRITABLE;
const ALL = PHASE_MASKS.ANY_PHASE;

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
  'rs.body': B.RESPONSE,
  'rs.chunk': B.BODY_FILTER,
  'rs.status': PHASE_MASKS.STATUS_WRITABLE,
  'sq.body': BEFORE_UPSTREAM,
  'sq.buffer': BEFORE_UPSTREAM,
  'sq.method': BEFORE_UPSTREAM,
  'sq.scheme': BEFORE_UPSTREAM,
  'sq.clearArg': BEFORE_UPSTREAM,
  'sv.target': PHASE_MASKS.SERVICE_KNOWN,
  'sv.retries': PHASE_MASKS.SERVICE_KNOWN,
  'sv.timeouts': PHASE_MASKS.SERVICE_KNOWN,
  exit: BEFORE_UPSTREAM,
  auth: BEFORE_UPSTREAM,
  log: PHASE_MASKS.WITHOUT_REQUEST, // configure's lines too
  '@': ALL, // marker: the operations that follow are this instance's
};

/** Cap on the body each body operation carries. */
const BODY_CAP: Readonly<Record<string, number>> = {
  'rs.body': OUTPUT_CAPS.maxBodyBytes,
  'rs.chunk': OUTPUT_CAPS.maxChunkBytes,
  'sq.body': OUTPUT_CAPS.maxRequestBodyBytes,
};

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What node:http and undici accept in a header value: tab, visible ASCII, obs-text. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[\s#?\0]/;
const BAD_QUERY = /[\s#\0]/;
const LOG_LEVELS = new Set(['debug', 'info', 'warn', 'error']);
/** Kong's methods for set_method, less CONNECT (undici sends no CONNECT through a pool). */
export const SERVICE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'MKCOL', 'COPY', 'MOVE', 'PROPFIND', 'PROPPATCH', 'LOCK', 'UNLOCK', 'PATCH', 'TRACE']);
const NO_TARGETS: ReadonlySet<string> = new Set();

function within(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** The "host:port" key of service.setTarget's arguments (IPv6 in brackets, lower case), or null when they cannot be one. */
export function targetKey(host: unknown, port: unknown): string | null {
  if (typeof host !== 'string' || host.length === 0 || host.length > 255 || !within(port, 1, 65535)) return null;
  const h = host.toLowerCase();
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/**
 * Headers that only the gateway manages: a plugin changing them would break framing. And
 * `__proto__`, not a header: a key that would swap the prototype of the host's header
 * object. Compared by length first, so a name is never hashed for it.
 */
function managed(lower: string): boolean {
  switch (lower.length) {
    case 2: return lower === 'te';
    case 7: return lower === 'trailer' || lower === 'upgrade';
    case 9: return lower === '__proto__';
    case 10: return lower === 'connection' || lower === 'keep-alive';
    case 14: return lower === 'content-length';
    case 16: return lower === 'proxy-connection';
    case 17: return lower === 'transfer-encoding';
    default: return false;
  }
}

function headerName(v: unknown): string | null {
  if (typeof v !== 'string' || v.length === 0 || v.length > 256 || !TOKEN.test(v)) return null;
  const lower = v.toLowerCase();
  return managed(lower) ? null : lower;
}

function headerValue(v: unknown, name: string): v is string {
  return typeof v === 'string' && v.length + name.length <= OUTPUT_CAPS.maxHeaderBytes && !BAD_VALUE.test(v);
}

function own(h: Record<string, string | string[] | undefined>, name: string): string | string[] | undefined {
  return Object.hasOwn(h, name) ? h[name] : undefined;
}

/** A refused operation: what is wrong, and the plugin instance that issued it (-1: unknown). */
export type OpError = { readonly detail: string; readonly instance: number };

/** Checks one operation; returns what is wrong with it, or null. */
function check(op: unknown, phase: number, t: OpTarget): string | null {
  if (!Array.isArray(op) || typeof op[0] !== 'string') return 'an operation is not [name, ...args]';
  const kind = op[0];
  const allowed = OP_PHASES[kind];
  if (allowed === undefined) return `unknown operation ${JSON.stringify(kind.slice(0, 40))}`;
  if ((allowed & phase) === 0) return `operation ${kind} is not allowed in this phase`;
  switch (kind) {
    case 'sq.set':
    case 'sq.add':
    case 'rs.set':
    case 'rs.add': {
      const name = headerName(op[1]);
      if (name === null) return `${kind}: invalid or gateway-managed header name`;
      if (!headerValue(op[2], name)) return `${kind}: invalid header value for ${name} (only tab, visible ASCII and bytes 0x80-0xff, within ${OUTPUT_CAPS.maxHeaderBytes} bytes)`;
      op[1] = name; // lower case from here on: applyOps applies it as it is
      return null;
    }
    case 'sq.clear':
    case 'rs.clear': {
      const name = headerName(op[1]);
      if (name === null) return `${kind}: invalid or gateway-managed header name`;
      op[1] = name;
      return null;
    }
    case 'sq.path': {
      const p = op[1];
      return typeof p !== 'string' || p[0] !== '/' || p.length > 8192 || BAD_PATH.test(p) ? 'sq.path: path must start with "/" and hold no spaces, "?" or "#"' : null;
    }
    case 'sq.query': {
      const q = op[1];
      return typeof q !== 'string' || q.length > 8192 || BAD_QUERY.test(q) ? 'sq.query: invalid query string' : null;
    }
    case 'rs.body':
    case 'rs.chunk':
    case 'sq.body': {
      // The body text travels after the result (RunResult.body); the operation carries its length.
      const n = op[1];
      const cap = BODY_CAP[kind];
      return typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > cap ? `${kind}: body must be a string within ${cap} characters` : null;
    }
    case 'rs.status': {
      const status = op[1];
      return typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599 ? 'rs.status: status must be an integer from 200 to 599' : null;
    }
    case 'sq.method':
      return typeof op[1] === 'string' && SERVICE_METHODS.has(op[1]) ? null : `sq.method: method must be one of ${[...SERVICE_METHODS].join(', ')}`;
    case 'sq.scheme':
      return op[1] === 'http' || op[1] === 'https' ? null : 'sq.scheme: scheme must be "http" or "https"';
    case 'sq.clearArg':
      return typeof op[1] === 'string' && op[1].length <= 8192 ? null : 'sq.clearArg: invalid argument name';
    case 'sv.target': {
      const key = targetKey(op[1], op[2]);
      if (key === null) return 'sv.target: host must be a non-empty string and port an integer from 1 to 65535';
      // A tenant reaches only what the operator gave its service: its own host and its `targets`.
      return (t.targets ?? NO_TARGETS).has(key) ? null : `sv.target: ${key.slice(0, 300)} is not a target of this service (its url or its \`targets\`)`;
    }
    case 'sv.retries':
      return within(op[1], 0, OUTPUT_CAPS.maxRetries) ? null : `sv.retries: retries must be an integer from 0 to ${OUTPUT_CAPS.maxRetries}`;
    case 'sv.timeouts':
      return within(op[1], 1, OUTPUT_CAPS.maxConnectTimeoutMs) && within(op[2], 1, OUTPUT_CAPS.maxTimeoutMs) && within(op[3], 1, OUTPUT_CAPS.maxTimeoutMs)
        ? null
        : `sv.timeouts: connect must be an integer from 1 to ${OUTPUT_CAPS.maxConnectTimeoutMs} ms, write and read from 1 to ${OUTPUT_CAPS.maxTimeoutMs} ms`;
    case 'exit': {
      const [, status, body, headers] = op;
      // 1xx are not final responses: sent as one, the client would misread the next response.
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return 'exit: status must be an integer from 200 to 599';
      if (body !== null && (typeof body !== 'string' || body.length > OUTPUT_CAPS.maxBodyBytes)) return 'exit: body must be a string within the body cap';
      if (!Array.isArray(headers) || headers.length % 2 !== 0 || headers.length > 2 * OUTPUT_CAPS.maxExitHeaders) return 'exit: invalid headers';
      for (let k = 0; k < headers.length; k += 2) {
        const name = headerName(headers[k]);
        if (name === null || !headerValue(headers[k + 1], name)) return 'exit: invalid header';
      }
      return null;
    }
    case 'auth':
      return checkAuth(op, t.consumers);
    case 'log': {
      const [, inst, level, message] = op;
      return typeof inst !== 'number' || !LOG_LEVELS.has(level) || typeof message !== 'string' ? 'log: invalid log line' : null;
    }
    default:
      return null; // '@' markers
  }
}

/**
 * Validates every operation of one call issued in `phase`, then applies them all. Returns
 * null on success, or the first invalid operation and the plugin that issued it; then
 * nothing is applied (the caller treats the result as that plugin's bad_return).
 */
export function applyOps(ops: readonly unknown[], phase: number, t: OpTarget, log: LogSink): OpError | null {
  let owner = -1;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    if (Array.isArray(op) && op[0] === '@') {
      if (typeof op[1] !== 'number' || !Number.isInteger(op[1])) return { detail: 'invalid owner marker', instance: -1 };
      owner = op[1];
      continue;
    }
    const bad = check(op, phase, t);
    if (bad !== null) return { detail: bad, instance: owner };
  }
  let lines = 0;
  owner = -1;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as unknown[];
    const kind = op[0];
    if (kind === '@') owner = op[1] as number;
    switch (kind) {
      case 'sq.set':
      case 'sq.add': {
        const name = op[1] as string; // lower case (check)
        const h = t.upstreamHeaders;
        const prev = own(h, name);
        const value = op[2] as string;
        if (kind === 'sq.set' || prev === undefined) h[name] = value;
        else h[name] = Array.isArray(prev) ? [...prev, value] : [prev, value];
        break;
      }
      case 'sq.clear':
        delete t.upstreamHeaders[op[1] as string];
        break;
      case 'sq.path':
        t.upstreamPath = op[1] as string;
        break;
      case 'sq.query':
        t.upstreamQuery = op[1] as string;
        break;
      case 'rs.set':
      case 'rs.add':
      case 'rs.clear':
        (t.responseEdits ??= []).push([kind === 'rs.set' ? 'set' : kind === 'rs.add' ? 'add' : 'clear', op[1] as string, kind === 'rs.clear' ? '' : (op[2] as string)]);
        break;
      case 'rs.body':
      case 'rs.chunk':
      case 'sq.body':
        break; // applied by the caller from RunResult.body
      case 'sq.buffer':
        t.buffering = true;
        break;
      case 'rs.status':
        t.status = op[1] as number;
        break;
      case 'sq.method':
        t.method = op[1] as string;
        break;
      case 'sq.scheme':
        t.scheme = op[1] as 'http' | 'https';
        break;
      case 'sq.clearArg':
        t.upstreamQuery = withoutArg(t.upstreamQuery, op[1] as string);
        break;
      case 'sv.target':
        t.upstream = targetKey(op[1], op[2]);
        break;
      case 'sv.retries':
        t.retries = op[1] as number;
        break;
      case 'sv.timeouts':
        t.timeouts = [op[1] as number, op[2] as number, op[3] as number];
        break;
      case 'auth':
        t.auth = authOf(op, t.consumers, owner);
        break;
      case 'exit': {
        const headers = op[3] as string[];
        const hs: string[] = [];
        for (let k = 0; k < headers.length; k += 2) hs.push(headers[k].toLowerCase(), headers[k + 1]);
        t.exit = { status: op[1] as number, body: op[2] as string | null, headers: hs, json: op[4] === true };
        return null; // nothing after an exit counts
      }
      case 'log': {
        if (++lines > OUTPUT_CAPS.maxLogLines) break;
        const message = op[3] as string;
        log(op[1] as number, op[2] as 'info', message.length > OUTPUT_CAPS.maxLogChars ? message.slice(0, OUTPUT_CAPS.maxLogChars) : message);
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
      const prev = Object.hasOwn(headers, name) ? headers[name] : undefined;
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
  }
}

/** `query` without every argument whose decoded name is `name` (Kong's clear_query_arg); the others keep their bytes and order. */
export function withoutArg(query: string, name: string): string {
  if (query === '') return query;
  const kept: string[] = [];
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    let key = eq < 0 ? part : part.slice(0, eq);
    try {
      key = decodeURIComponent(key.replaceAll('+', ' '));
    } catch {
      // an argument whose name is not valid percent-encoding is compared as it is
    }
    if (key !== name) kept.push(part);
  }
  return kept.join('&');
}
