import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import { Pool } from 'undici';

// What the lean Node proxy (node-proxy.ts) and the naive isolated-vm gateway (naive-ivm.ts)
// share: the same upstream pool, header filtering, error answer and stop, so the two differ
// only by the plugin calls.

/** The upstream keep-alive pool both peers use. */
export function upstreamPool(url: string): Pool {
  return new Pool(url, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The headers without the hop-by-hop ones. */
export function strip(h: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in h) if (!HOP.has(k)) out[k] = h[k];
  return out;
}

/** pool.stream's completion callback: a 502 when nothing was sent yet, else the response is cut. */
export function upstreamDone(res: ServerResponse): (err: Error | null) => void {
  return (err) => {
    if (err === null) return;
    if (res.headersSent) res.destroy();
    else {
      res.writeHead(502);
      res.end();
    }
  };
}

/** Listens on 127.0.0.1:`port`; SIGTERM closes the connections, the server and the pool, then exits. */
export function serve(server: Server, pool: Pool, port: number): void {
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => void pool.close().then(() => process.exit(0)));
  });
}
