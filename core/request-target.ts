import type { IncomingMessage } from 'node:http';
import type { ProxyContext } from './proxy-context.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import { exactPath, normalizePath, type Match } from './router/router.ts';
import type { Snapshot } from './snapshot.ts';

/**
 * Where the path of a request target starts: 0 for origin-form ("/a?b"), after the
 * authority for absolute-form ("http://h/a?b"), -1 for anything else.
 */
function pathStart(url: string): number {
  if (url.charCodeAt(0) === 47 /* / */) return 0;
  if (!url.startsWith('http://') && !url.startsWith('https://')) return -1;
  let i = url.indexOf('//') + 2;
  while (i < url.length && url.charCodeAt(i) !== 47 && url.charCodeAt(i) !== 63 /* ? */) i++;
  return i;
}

/**
 * The route and the three views of the path a request needs: normalized, exact, query.
 * `stage`: its tenant's rewrite stage when the tenant has one (the route is then chosen
 * after rewrite, core/rewrite-first.ts); `match` may be null only then (no route matched
 * the request as received, its host named the tenant).
 */
export type Target = { match: Match<RuntimeRoute> | null; stage: TenantStage | null; path: string; rawPath: string; query: string; bareQuery: boolean };

/**
 * Parses and routes a request target; a string error code when it cannot be served.
 * Shared by plain requests and WebSocket handshakes.
 */
export function resolveTarget(ctx: ProxyContext, snapshot: Snapshot, req: IncomingMessage): Target | 'ISG_ERR_BAD_REQUEST' | 'ISG_ERR_NO_ROUTE' {
  const url = req.url ?? '';
  const start = pathStart(url);
  if (start < 0) return 'ISG_ERR_BAD_REQUEST';
  const q = url.indexOf('?', start);
  const end = q < 0 ? url.length : q;
  // The client's bytes: the upstream gets them (minus dot segments), routing the normalized form.
  const raw = start === end ? '/' : start === 0 && q < 0 ? url : url.slice(start, end);
  const path = normalizePath(raw);
  // The tenant is known from the route the request matches as received, else from its host.
  const match = snapshot.router.match(req.headers.host, req.method!, path);
  const stage = match !== null ? match.route.rewrite : snapshot.hosts === null ? null : snapshot.hosts.owner(req.headers.host);
  if (match === null && stage === null) {
    ctx.countUnmatched();
    return 'ISG_ERR_NO_ROUTE';
  }
  const query = q < 0 ? '' : url.slice(q + 1);
  return { match, stage, path, rawPath: path === raw ? raw : exactPath(raw), query, bareQuery: q >= 0 && query === '' };
}
