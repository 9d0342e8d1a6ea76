import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { pino } from 'pino';
import { Gateway } from '../../core/gateway.ts';
import { createLogger, type Logger } from '../../core/log.ts';

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

export type StartOptions = {
  /** Logger of the gateway (default: silent, or ISOGATE_TEST_LOG's level). See captureLogger(). */
  logger?: Logger;
  /** Reload when the config file changes (what `--watch` does). */
  watch?: boolean;
  /** The access log (default: off, so test output stays readable); a path writes it there. */
  accessLog?: boolean | string;
};

/** Starts a real gateway on 127.0.0.1 (random ports) from YAML text. */
export async function startGateway(yaml: string, files: Record<string, string> = {}, options: StartOptions = {}): Promise<TestGateway> {
  const configFile = writeConfig(yaml, files);
  const gw = await Gateway.start({
    configFile,
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    logger: options.logger ?? createLogger(process.env.ISOGATE_TEST_LOG ?? 'silent'),
    watch: options.watch,
    accessLog: options.accessLog ?? false,
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

/** One parsed pino line. */
export type LogLine = { level: number; msg: string; [key: string]: unknown };

/** A pino logger that keeps every line it writes in `lines` (pino levels: 20 debug, 30 info, 40 warn, 50 error). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { logger, lines };
}

/** Polls `pred` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function waitFor<T>(pred: () => T | Promise<T>, timeoutMs = 3000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Waits, when the next start of a fixed window of `windowMs` (aligned to the clock, as
 * pdk.counters' windows are) is less than `marginMs` away, until it has passed: counts
 * made right after are then all in one window.
 */
export async function clearOfWindowStart(windowMs: number, marginMs = 5_000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 100));
}

/** A promise the test resolves by hand (fire): to hold an upstream's response until the test says so. */
export function signal(): { promise: Promise<void>; fire(): void } {
  let fire!: () => void;
  const promise = new Promise<void>((r) => (fire = r));
  return { promise, fire };
}

/** A TCP port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * Writes `text` as-is on a fresh TCP connection and returns everything read until the peer
 * closes (or `timeoutMs` passes). For requests an HTTP client would refuse to send.
 */
export function rawRequest(port: number, text: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolvePromise(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolvePromise(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolvePromise(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(text);
  });
}

/** Splits a raw HTTP/1.1 response into status, lower-cased headers (repeats joined by ", ") and body. */
export function parseRawResponse(raw: string): { status: number; headers: Record<string, string>; rawHead: string; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, rawHead: head, body: end < 0 ? '' : raw.slice(end + 4) };
}

/**
 * Source of a plugin module for the temp config folder: `handlers` is the body of the
 * module after its metadata, e.g. `export function access(pdk) { ... }`.
 */
export function pluginSource(name: string, handlers: string, priority = 100): string {
  return `export const name = ${JSON.stringify(name)};\nexport const version = '1.0.0';\nexport const priority = ${priority};\n${handlers}\n`;
}

/** Breaker settings that never trip, for suites that fault the same plugin on purpose. */
export const NO_BREAKER = 'sandbox: { breaker: { faults: 100000 } }';
