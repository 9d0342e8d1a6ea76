// In-isolate runtime: pdk.request, reads of the client's request (a snapshot copied in).
// Snapshot fields (core/exchange-state.ts requestJson): m method, p normalized path, q raw query,
// h headers, ip peer address, cp peer port, s scheme, o the gateway's port, v HTTP minor
// version, t start time (epoch ms), d segments of the route prefix that matched (of rp,
// the path routed, when the tenant's rewrite changed it; else of p), u the
// request target as sent (only when it differs from p and q), tr 1 when the peer is a
// trusted proxy. Everything else is derived here, on demand. The snapshot is the runtime's
// (prelude.ts request()): strings and numbers are read from it, objects are copies made
// for the calling realm (mine()).
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import type { PdkRequest } from '../types.ts';
import { $apply, $create, $decode, $freeze, $indexOf, $isArray, $replace, $slice, $split, $toLower, $trim, ANY_PHASE, bodyIn, checkPhase, headerOut, headersOut, instance, instances, list, mine, own, realm, request, str } from './prelude.ts';
import { PLUS, parseBody } from './bodies.ts';

const BEFORE_UPSTREAM = PHASES.masks.BEFORE_UPSTREAM;


function parseQuery(raw: string): Record<string, string | string[]> {
  const out: Record<string, any> = $create(null);
  if (raw === '') return out;
  const parts = $apply($split, raw, ['&']);
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === '') continue;
    const eq = $apply($indexOf, part, ['=']);
    let k = eq < 0 ? part : $apply($slice, part, [0, eq]);
    let v = eq < 0 ? '' : $apply($slice, part, [eq + 1]);
    try { k = $decode($apply($replace, k, [PLUS, ' '])); v = $decode($apply($replace, v, [PLUS, ' '])); } catch { /* keep raw */ }
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if ($isArray(prev)) prev[prev.length] = v;
    else { const both = list(); both[0] = prev; both[1] = v; out[k] = both; }
  }
  return out;
}

/** First value of a header that may be repeated (node:http joins repeats with ", "): Kong's get_header. */
export function firstValue(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  if ($isArray(v)) v = v[0];
  const comma = $apply($indexOf, v, [',']);
  return $apply($trim, comma < 0 ? v : $apply($slice, v, [0, comma]), []);
}

/** A Host-style value without userinfo and port, lower case ("[::1]" keeps its brackets). */
function hostOnly(v: string): string {
  let h = v;
  const at = $apply($indexOf, h, ['@']);
  if (at >= 0) h = $apply($slice, h, [at + 1]);
  const close = $apply($indexOf, h, [']']);
  const colon = $apply($indexOf, h, [':', close < 0 ? 0 : close]);
  if (colon >= 0) h = $apply($slice, h, [0, colon]);
  return $apply($toLower, h, []);
}

/** The port of a Host-style value, or undefined. */
function hostPort(v: string): number | undefined {
  const close = $apply($indexOf, v, [']']);
  const colon = $apply($indexOf, v, [':', close < 0 ? 0 : close]);
  if (colon < 0) return undefined;
  const n = +$apply($slice, v, [colon + 1]);
  return n > 0 && n <= 65535 && (n | 0) === n ? n : undefined;
}

/** X-Forwarded-<name> when the peer is a trusted proxy (proxy.trustedProxies), else undefined. */
export function forwarded(name: string): string | undefined {
  const r = request();
  return r.tr === 1 ? firstValue(r.h[name]) : undefined;
}

/** The request target as the client sent it, without scheme and authority (absolute form). */
export function target(): string {
  const r = request();
  if (r.u === undefined) return r.q === '' ? r.p : r.p + '?' + r.q;
  const u = r.u;
  if (u[0] === '/') return u;
  const authority = $apply($indexOf, u, ['//']) + 2;
  let i = authority;
  while (i < u.length && u[i] !== '/' && u[i] !== '?') i++;
  return $apply($slice, u, [i]);
}

export const pdkRequest: PdkRequest = $freeze({
  getMethod() { checkPhase('request.getMethod', ANY_PHASE); return request().m; },
  /** Normalized (dot segments resolved, percent-escapes of unreserved characters decoded), without the query. */
  getPath() { checkPhase('request.getPath', ANY_PHASE); return request().p; },
  /** The path as the client sent it, not normalized, without the query. */
  getRawPath() {
    checkPhase('request.getRawPath', ANY_PHASE);
    const t = target();
    const q = $apply($indexOf, t, ['?']);
    return q < 0 ? t : $apply($slice, t, [0, q]);
  },
  /** Path and query as the client sent them. */
  getPathWithQuery() { checkPhase('request.getPathWithQuery', ANY_PHASE); return target(); },
  getRawQuery() { checkPhase('request.getRawQuery', ANY_PHASE); return request().q; },
  getQuery() {
    checkPhase('request.getQuery', ANY_PHASE);
    const rm = mine();
    if (rm.query === null) rm.query = parseQuery(request().q);
    return rm.query;
  },
  getQueryArg(name: unknown) {
    checkPhase('request.getQueryArg', ANY_PHASE);
    return pdkRequest.getQuery()[str(name, 'query argument name')];
  },
  /** Kong's get_host: the Host header without port, lower case. */
  getHost() {
    checkPhase('request.getHost', ANY_PHASE);
    const h = request().h.host;
    return h === undefined ? '' : hostOnly(h);
  },
  /** The port the gateway received the request on. */
  getPort() { checkPhase('request.getPort', ANY_PHASE); return request().o; },
  getScheme() { checkPhase('request.getScheme', ANY_PHASE); return request().s; },
  getForwardedScheme() {
    checkPhase('request.getForwardedScheme', ANY_PHASE);
    const v = forwarded('x-forwarded-proto');
    return v === undefined || v === '' ? request().s : $apply($toLower, v, []);
  },
  getForwardedHost() {
    checkPhase('request.getForwardedHost', ANY_PHASE);
    const v = forwarded('x-forwarded-host');
    return v === undefined || v === '' ? pdkRequest.getHost() : hostOnly(v);
  },
  getForwardedPort() {
    checkPhase('request.getForwardedPort', ANY_PHASE);
    if (request().tr === 1) {
      const p = forwarded('x-forwarded-port');
      const n = p === undefined ? NaN : +p;
      if (n > 0 && n <= 65535 && (n | 0) === n) return n;
      const h = forwarded('x-forwarded-host');
      const hp = h === undefined ? undefined : hostPort(h);
      if (hp !== undefined) return hp;
    }
    return request().o;
  },
  getForwardedPath() {
    checkPhase('request.getForwardedPath', ANY_PHASE);
    const v = forwarded('x-forwarded-path');
    return v === undefined || v === '' ? request().p : v;
  },
  /** X-Forwarded-Prefix from a trusted proxy, else undefined (Kong returns nil). */
  getForwardedPrefix() {
    checkPhase('request.getForwardedPrefix', ANY_PHASE);
    const v = forwarded('x-forwarded-prefix');
    return v === '' ? undefined : v;
  },
  /** 1.0 or 1.1 (node:http serves nothing else). */
  getHttpVersion() { checkPhase('request.getHttpVersion', ANY_PHASE); return request().v === 0 ? 1.0 : 1.1; },
  /** When the gateway received the request, in ms since the epoch. */
  getStartTime() { checkPhase('request.getStartTime', ANY_PHASE); return request().t; },
  /**
   * Kong's get_uri_captures. Our router matches path prefixes only (no regex paths), so the
   * one capture is the whole match: unnamed[0] is the part of the path the route's prefix
   * matched; named is always empty.
   */
  getUriCaptures() {
    checkPhase('request.getUriCaptures', ANY_PHASE);
    const rm = mine();
    if (rm.captures === null) {
      const r = request();
      let at = 0;
      const p = r.rp ?? r.p; // rp: the path the route matched, when a rewrite moved the request
      for (let n = 0; n < r.d && at >= 0; n++) at = $apply($indexOf, p, ['/', at + 1]);
      const unnamed = list();
      unnamed[0] = r.d === 0 ? '' : at < 0 ? p : $apply($slice, p, [0, at]);
      const uc: Record<string, unknown> = $create(null);
      uc.unnamed = unnamed;
      uc.named = $create(null);
      rm.captures = $freeze(uc);
    }
    return rm.captures;
  },
  /** Header names are case-insensitive; a repeated header comes joined with ", ". */
  getHeader(name: unknown) {
    checkPhase('request.getHeader', ANY_PHASE);
    return headerOut(own(request().h, $apply($toLower, str(name, 'header name'), [])));
  },
  getHeaders() {
    checkPhase('request.getHeaders', ANY_PHASE);
    const rm = mine();
    if (rm.headers === null) rm.headers = headersOut(request().h);
    return rm.headers;
  },
  /** The peer's address (client.getIp). */
  getClientIp() { checkPhase('request.getClientIp', ANY_PHASE); return request().ip; },
  /**
   * The client's body as text (UTF-8), for a plugin that exports `reads: ['body']`; '' when
   * there is none; null when it was larger than CAPS.maxRequestBodyBytes (it then went
   * upstream untouched, streamed).
   */
  getRawBody() {
    checkPhase('request.getRawBody', BEFORE_UPSTREAM);
    readsBody('request.getRawBody');
    return bodyIn;
  },
  /** The body parsed by `mimeType` or the request's Content-Type: JSON, form or multipart; null as getRawBody. */
  getBody(mimeType?: unknown) {
    checkPhase('request.getBody', BEFORE_UPSTREAM);
    readsBody('request.getBody');
    if (bodyIn === null) return null;
    return parseBody(bodyIn, request().h['content-type'], mimeType, 'request.getBody');
  },
} satisfies PdkRequest);

/** The body is buffered only for chains with a plugin that declared it reads it; a plugin that did not may not read it. */
function readsBody(fn: string): void {
  if (!instances[instance].readsBody) throw new realm.Error(`${fn} needs the plugin to export reads: ['body']`);
}
