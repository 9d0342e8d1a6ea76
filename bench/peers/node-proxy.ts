import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { serve, strip, upstreamDone, upstreamPool } from './lean-parts.ts';

/**
 * The floor any Node gateway pays: node:http in front, an undici keep-alive Pool behind,
 * bodies streamed both ways, hop-by-hop headers dropped. No routing, no plugins.
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const pool = upstreamPool(values.upstream!);

const server = createServer({ keepAliveTimeout: 5_000, requestTimeout: 0 }, (req, res) => {
  const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
  pool.stream(
    { path: req.url!, method: req.method as 'GET', headers: strip(req.headers), body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, strip(headers));
      return res;
    },
    upstreamDone(res),
  );
});
serve(server, pool, Number(values.port));
