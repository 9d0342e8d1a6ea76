import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { RuntimeRoute } from '../../core/route.ts';
import { isTrusted } from '../../core/trusted-proxies.ts';

/**
 * The request snapshot handed to plugins (see pdk-bridge/README.md and the field list in
 * pdk-bridge/runtime/request.ts), then a newline and the route's own JSON (made once
 * per config). Only what the socket and parser already hold: everything else is derived
 * in the isolate when a plugin asks.
 */
export function requestJson(req: IncomingMessage, path: string, query: string, route: RuntimeRoute, depth: number, startedAt: number, routedPath?: string): string {
  const socket = req.socket;
  const ip = socket.remoteAddress ?? '';
  const url = req.url ?? '';
  const trusted = route.proxy.trusted;
  return JSON.stringify({
    m: req.method,
    p: path,
    q: query,
    h: req.headers,
    ip,
    cp: socket.remotePort,
    s: 'http',
    o: socket.localPort,
    v: req.httpVersionMinor,
    t: startedAt,
    d: depth,
    // the path the route matched, when the tenant's rewrite moved the request (the `d` segments are of it)
    rp: routedPath,
    // the target as sent, only when path and query do not spell it (no concatenation to find out)
    u: (query === '' ? url === path : url.length === path.length + 1 + query.length && url.startsWith(path)) ? undefined : url,
    tr: trusted !== null && isTrusted(trusted, ip) ? 1 : undefined,
  }) + '\n' + route.pdkJson;
}

/** What the log phase's snapshot is made of (an Exchange of core/proxy.ts). */
export type LoggedExchange = {
  readonly res: { getHeaders(): OutgoingHttpHeaders };
  readonly socket: { readonly bytesWritten: number };
  readonly started: number;
  readonly target: { readonly exit: unknown } | null;
  readonly state: { readonly errorId: string };
  readonly sentHeaders: unknown;
  readonly upstreamMs: number;
  readonly upstreamUri: string;
  readonly upstreamAt: string;
  readonly tries: number;
  readonly bytesAtStart: number;
};

/**
 * The log phase's snapshot: status and headers sent, total ms (l), and what
 * log.serialize and response.getSource need: source (src), upstream uri (us) and latency
 * (pl, -1: none), target and tries (at, n), response bytes (rb).
 */
export function logSnapshot(ex: LoggedExchange, status: number): string {
  const src = ex.target !== null && ex.target.exit !== null ? 'exit' : ex.state.errorId !== '' || ex.upstreamMs < 0 ? 'error' : 'service';
  return JSON.stringify({
    s: status,
    h: ex.sentHeaders ?? ex.res.getHeaders(),
    l: performance.now() - ex.started,
    src,
    us: ex.upstreamUri,
    pl: ex.upstreamMs,
    at: ex.upstreamAt,
    n: ex.tries,
    rb: ex.socket.bytesWritten - ex.bytesAtStart,
  });
}
