import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
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

// How long a draining server leaves idle keep-alive connections open: a request their
// client sent as we stopped lands and is answered (with Connection: close) instead of
// meeting a closed socket.
const IDLE_GRACE_MS = 500;
const netClose = NetServer.prototype.close;

/** Answered with Connection: close: the client opens its next request elsewhere. */
function lastOnConnection(_req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false;
}

/**
 * Stops accepting and drains: every request from now on is answered with Connection:
 * close, idle keep-alive connections are closed after IDLE_GRACE_MS, the others after `graceMs`.
 */
export function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolvePromise) => {
    if (!server.listening) return resolvePromise();
    // net.Server's close: http.Server's closes idle keep-alive connections at once, which
    // resets the request a client is sending on one at that moment.
    netClose.call(server, () => resolvePromise());
    server.prependListener('request', lastOnConnection);
    // Then http.Server's close: it closes the idle connections and stops its timeout checks
    // (the listening socket is closed already; a drained server only emits 'close' again).
    setTimeout(() => server.close(), Math.min(graceMs, IDLE_GRACE_MS)).unref();
    setTimeout(() => server.closeAllConnections(), graceMs).unref();
  });
}
