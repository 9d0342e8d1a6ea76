import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

/**
 * The benchmark upstream: as cheap as node:http gets. Any path answers a fixed 100-byte
 * body with Content-Length; a path containing "64k" streams 64 KB in four 16 KB chunks
 * (chunked encoding, no Content-Length), for the body-filter scenario.
 * Prints `count N` on stdout every 500 ms (the harness's live requests/s).
 */
const { values } = parseArgs({ options: { port: { type: 'string' }, bytes: { type: 'string', default: '100' } } });
const SMALL = Buffer.alloc(Number(values.bytes), 'x');
SMALL.write('{"ok":true,"pad":"');
SMALL.write('"}\n', SMALL.length - 3);
const CHUNK = Buffer.alloc(16 * 1024);
{
  const text = 'the upstream said hello; ';
  for (let i = 0; i < CHUNK.length; i++) CHUNK[i] = text.charCodeAt(i % text.length);
  CHUNK[CHUNK.length - 1] = 10;
}
const SMALL_HEADERS = ['content-type', 'application/json', 'content-length', String(SMALL.length)];
const BIG_HEADERS = ['content-type', 'text/plain'];

let count = 0;
const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  count++;
  if (req.url !== undefined && req.url.includes('64k')) {
    res.writeHead(200, BIG_HEADERS);
    res.write(CHUNK);
    res.write(CHUNK);
    res.write(CHUNK);
    res.end(CHUNK);
    return;
  }
  res.writeHead(200, SMALL_HEADERS);
  res.end(SMALL);
});
server.listen(Number(values.port), '127.0.0.1');

let last = -1;
setInterval(() => {
  if (count !== last) {
    last = count;
    process.stdout.write(`count ${count}\n`);
  }
}, 500).unref();

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
