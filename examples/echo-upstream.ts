import { createServer, type Server } from 'node:http';

/**
 * The demo's upstream: answers every request with a JSON description of what it received
 * (method, path, headers, body size), so you can see what the gateway and its plugins sent.
 */
export function createEchoServer(): Server {
  return createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes }, null, 2) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
}

export function startEchoServer(port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createEchoServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
