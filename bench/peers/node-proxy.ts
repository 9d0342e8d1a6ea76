import { createServer, type IncomingHttpHeaders } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

/**
 * The floor any Node gateway pays: node:http in front, an undici keep-alive Pool behind,
 * bodies streamed both ways, hop-by-hop headers dropped. No routing, no plugins.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const pool = new Pool(values.upstream!, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function strip(h: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in h) if (!HOP.has(k)) out[k] = h[k];
  return out;
}

const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0 }, (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { path: req.url!, method: req.method as 'GET', headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    },
    (err) => {
      if (err === null) return;
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(502);
        res.end();
      }
    },
  );
});
server.listen(Number(values.port), '127.0.0.1');
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void pool.close().then(() => process.exit(0)));
});
