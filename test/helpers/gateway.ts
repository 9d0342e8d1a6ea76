import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Gateway } from '../../core/gateway.ts';
import { createLogger } from '../../core/log.ts';

/** A real upstream on 127.0.0.1 with a random port. */
export type Upstream = { server: Server; url: string; port: number; close(): Promise<void> };

export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An upstream that answers with a JSON echo of the request it got. */
export function echoHandler(req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

/** Writes `yaml` to a fresh temp folder (with optional extra files, e.g. plugins) and returns the config path. */
export function writeConfig(yaml: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'isogate-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml);
  return file;
}

export type TestGateway = {
  gw: Gateway;
  /** http://127.0.0.1:PORT of the proxy */
  url: string;
  adminUrl: string;
  configFile: string;
  stop(): Promise<void>;
};

/** Starts a real gateway on 127.0.0.1 (random ports) from YAML text. */
export async function startGateway(yaml: string, files: Record<string, string> = {}): Promise<TestGateway> {
  const configFile = writeConfig(yaml, files);
  const gw = await Gateway.start({
    configFile,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    logger: createLogger(process.env.ISOGATE_TEST_LOG ?? 'silent'),
  });
  return {
    gw,
    configFile,
    url: `http://127.0.0.1:${gw.proxyAddress.port}`,
    adminUrl: `http://127.0.0.1:${gw.adminAddress!.port}`,
    stop: () => gw.stop(500),
  };
}

const agent = new Agent({ keepAliveTimeout: 1000, connections: 64 });

export type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: string; json<T = any>(): T };

/** One HTTP request over a real socket; never throws for an HTTP status. */
export async function send(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  const r = await request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher: agent });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body, json: () => JSON.parse(body) };
}
