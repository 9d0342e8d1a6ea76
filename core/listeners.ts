import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequestHandler, type ProxyContext } from './proxy.ts';
import { answerClientError } from './request-checks.ts';
import { WebSocketProxy, isWebSocketUpgrade } from './websocket.ts';

export type Listen = { host: string; port: number };
/** Where a server listens: host and port, or a socket a supervisor bound for this worker (core/supervisor/sockets.ts). */
export type ListenOn = Listen | { handle: object };

/** Requests the proxy listener received (the worker's share, in /status and isogate_worker_requests_total). */
export type ProxyCounts = { requests: number };

/** The proxy listener (not yet listening), the WebSocket tunnels it hands upgrades to, and its counts. */
export function createProxyServer(ctx: ProxyContext): { server: Server; websockets: WebSocketProxy; counts: ProxyCounts } {
  const handler = createRequestHandler(ctx);
  const counts: ProxyCounts = { requests: 0 };
  // requireHostHeader: false, so that a request without Host gets our JSON 400 (core/request-checks.ts), not node's empty one.
  // Only WebSocket upgrades leave the request path; any other Upgrade is proxied without it.
  const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0, requireHostHeader: false, shouldUpgradeCallback: isWebSocketUpgrade }, (req, res) => {
    counts.requests++;
    handler(req, res);
  });
  const websockets = new WebSocketProxy(ctx);
  server.on('upgrade', websockets.handle);
  // Malformed requests get a JSON 4xx and never reach the handler.
  server.on('clientError', answerClientError);
  return { server, websockets, counts };
}

/** The admin listener (not yet listening); malformed requests get the same JSON 4xx as on the proxy. */
export function createAdminServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(handler);
  server.on('clientError', answerClientError);
  return server;
}

export function listen(server: Server, at: ListenOn): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolvePromise();
    };
    if ('handle' in at) server.listen(at.handle, done);
    else server.listen(at.port, at.host, done);
  });
}

/** Stops accepting, closes idle connections now and the others after `graceMs`. */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolvePromise) => {
    if (!server.listening) return resolvePromise();
    server.close(() => resolvePromise());
    server.closeIdleConnections();
    const t = setTimeout(() => server.closeAllConnections(), graceMs);
    t.unref();
  });
}
