import type { IncomingMessage } from 'node:http';
import { applyHeaderEdits, type OpTarget } from '../pdk-bridge/host/ops.ts';
import { HOP_BY_HOP, appendVia, dropConnectionListed } from './headers.ts';
import type { RuntimeRoute } from './route.ts';
import { stripSegments } from './router/router.ts';

/**
 * What the proxy builds of a request for the upstream (headers, target) and the answer of
 * a plugin's exit(): plain functions shared by plain requests (core/before-upstream.ts,
 * core/proxy.ts, core/response-writing.ts) and WebSocket handshakes (core/websocket.ts).
 */

type Headers = Record<string, string | string[] | undefined>;

/**
 * Request headers as sent upstream: end-to-end only, with the X-Forwarded-* and Via set, and
 * `TE: trailers` when the client accepts trailers (the one TE member a proxy passes on).
 */
export function upstreamHeaders(req: IncomingMessage, route: RuntimeRoute, trailers: boolean): Headers {
  const src = req.headers;
  const out: Headers = {};
  for (const name in src) {
    if (!HOP_BY_HOP.has(name) && name !== 'expect') out[name] = src[name];
  }
  dropConnectionListed(out, src.connection);
  const ip = req.socket.remoteAddress ?? '';
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff === undefined || xff === '' ? ip : `${xff}, ${ip}`;
  out['x-forwarded-proto'] = 'http';
  if (src.host !== undefined) out['x-forwarded-host'] = src.host;
  if (!route.service.preserveHost) out.host = route.service.hostHeader;
  const via = req.httpVersionMinor === 0 ? route.proxy.via10 : route.proxy.via11;
  if (via !== null) appendVia(out, via);
  if (trailers) out.te = 'trailers';
  return out;
}

/** What plugins may change before the upstream: headers, path (the exact one, stripped), query. */
export function newTarget(route: RuntimeRoute, headers: Headers, rawPath: string, depth: number, query: string): OpTarget {
  return {
    consumers: route.consumers,
    auth: null,
    upstreamHeaders: headers,
    upstreamPath: route.stripPath ? stripSegments(rawPath, depth) : rawPath,
    upstreamQuery: query,
    responseEdits: null,
    exit: null,
    body: null,
    targets: route.targets,
  };
}

/** The request target sent upstream: base path, path, query (a bare "?" kept unless a plugin set a query). */
export function upstreamTarget(route: RuntimeRoute, target: OpTarget, bareQuery: boolean): string {
  const base = route.service.basePath;
  let path = base === '' ? target.upstreamPath : target.upstreamPath === '/' ? base : base + target.upstreamPath;
  if (target.upstreamQuery !== '') path += '?' + target.upstreamQuery;
  else if (bareQuery) path += '?';
  return path;
}

/**
 * Status, headers and body of a plugin's exit(), with the response header edits made before
 * it (response.setHeader in rewrite or access) applied: what headerFilter and bodyFilter
 * then see, as they would an upstream response (core/response-writing.ts sendExit), or what answers a
 * WebSocket handshake (core/websocket.ts).
 */
export function exitResponse(target: OpTarget): { status: number; headers: Headers; body: Buffer | null } {
  const exit = target.exit!;
  const status = exit.status;
  const headers: Headers = {};
  for (let i = 0; i < exit.headers.length; i += 2) headers[exit.headers[i]] = exit.headers[i + 1];
  const edits = target.responseEdits;
  if (edits !== null) applyHeaderEdits(headers, edits);
  // a 204 or 304 has no body
  const body = exit.body === null || status === 204 || status === 304 ? null : Buffer.from(exit.body);
  if (body !== null) {
    if (headers['content-type'] === undefined) headers['content-type'] = exit.json ? 'application/json' : 'text/plain; charset=utf-8';
    headers['content-length'] = String(body.length);
  } else if (status === 204 || status === 304) {
    delete headers['content-length'];
  } else {
    headers['content-length'] = '0';
  }
  return { status, headers, body };
}
