import { STATUS_CODES, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, errorBody, type ErrorCode } from './errors.ts';
import { HOP_BY_HOP, appendVia, endToEnd } from './headers.ts';
import { newErrorId } from '../pdk-bridge/host/phase-call.ts';
import type { ProxyContext } from './proxy-context.ts';
import type { RuntimeRoute } from './route.ts';
import { Tunnel } from './websocket-tunnel.ts';

type Headers = Record<string, string | string[] | undefined>;

/*
 * A WebSocket handshake's way to the service and its answers (core/websocket.ts runs its
 * phases first): the handshake sent upstream on a connection of its own, the service's 101
 * relayed and the tunnel opened, and every other answer written as a plain HTTP response
 * on the client's socket (node:http does not write one on an upgrade's socket).
 */

export function errorHeaders(): Headers {
  return { 'content-type': 'application/json' };
}

export function answered(route: RuntimeRoute, started: number, status: number): void {
  route.metrics.status(status).inc();
  route.metrics.duration.observe((performance.now() - started) / 1000);
}

export function fail(socket: Duplex, route: RuntimeRoute, started: number, code: ErrorCode, errorId?: string): void {
  const headers = errorHeaders();
  if (errorId !== undefined) headers['x-isogate-error-id'] = errorId;
  answered(route, started, ERRORS[code].status);
  refuse(socket, ERRORS[code].status, headers, Buffer.from(errorBody(code, errorId)));
}

/** An HTTP response head; values were checked by node:http's parser or by the PDK validator. */
function responseHead(status: number, reason: string, headers: Headers): string {
  let text = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) text += `${name}: ${one}\r\n`;
    else text += `${name}: ${v}\r\n`;
  }
  return `${text}\r\n`;
}

/** Answers a handshake with a plain HTTP response and closes the connection. */
export function refuse(socket: Duplex, status: number, headers: Headers, body: Buffer | null): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  headers['content-length'] = String(body === null ? 0 : body.length);
  headers.connection = 'close';
  // latin1: header values may hold obs-text bytes (0x80-0xff), one byte each.
  const text = Buffer.from(responseHead(status, STATUS_CODES[status] ?? '', headers), 'latin1');
  socket.end(body === null ? text : Buffer.concat([text, body]));
}

/** The handshake sent to the service, until it answers: 101 makes a Tunnel, anything else is relayed. */
export class Handshake {
  readonly ctx: ProxyContext;
  readonly route: RuntimeRoute;
  readonly client: Duplex;
  readonly clientHead: Buffer;
  readonly started: number;
  upstream: ClientRequest | null = null;
  timer: NodeJS.Timeout | null = null;
  done = false;

  constructor(ctx: ProxyContext, route: RuntimeRoute, client: Duplex, clientHead: Buffer, started: number) {
    this.ctx = ctx;
    this.route = route;
    this.client = client;
    this.clientHead = clientHead;
    this.started = started;
  }

  send(path: string, headers: Headers): void {
    const service = this.route.service;
    const up = httpRequest({ host: service.hostname, port: service.port, method: 'GET', path, headers, agent: false });
    this.upstream = up;
    // connectTimeoutMs to connect, then timeoutMs for the answer: the service's own timeouts.
    this.timer = setTimeout(this.onTimeout, service.connectTimeoutMs);
    up.once('socket', (s: Socket) => s.once('connect', this.onConnect));
    up.once('upgrade', this.onUpgrade);
    up.once('response', this.onResponse);
    up.once('error', this.onError);
    this.client.once('close', this.onClientClose);
    up.end();
  }

  finish(): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.client.off('close', this.onClientClose);
    return true;
  }

  onConnect = (): void => {
    if (this.done) return;
    clearTimeout(this.timer!);
    this.timer = setTimeout(this.onTimeout, this.route.service.timeoutMs);
  };

  onTimeout = (): void => {
    if (!this.finish()) return;
    this.upstream!.destroy();
    const errorId = newErrorId();
    this.ctx.log.info({ tenant: this.route.tenant, route: this.route.name, errorId }, 'upstream error: WebSocket handshake timed out');
    fail(this.client, this.route, this.started, 'ISG_ERR_UPSTREAM_TIMEOUT', errorId);
  };

  onError = (err: NodeJS.ErrnoException): void => {
    if (!this.finish()) return;
    const errorId = newErrorId();
    this.ctx.log.info({ tenant: this.route.tenant, route: this.route.name, code: err.code ?? err.name, errorId }, `upstream error: ${err.message}`);
    const invalid = err.code?.startsWith('HPE_') === true;
    fail(this.client, this.route, this.started, invalid ? 'ISG_ERR_UPSTREAM_BAD_RESPONSE' : 'ISG_ERR_UPSTREAM_UNAVAILABLE', errorId);
  };

  onClientClose = (): void => {
    if (this.finish()) this.upstream!.destroy();
  };

  /** The service refused the upgrade: its response goes to the client as it is, then the connection closes. */
  onResponse = (res: IncomingMessage): void => {
    if (!this.finish()) return;
    const out = endToEnd(res.headers);
    const via = this.route.proxy.via11;
    if (via !== null) appendVia(out, via);
    out.connection = 'close'; // the body (if any) is delimited by the close
    answered(this.route, this.started, res.statusCode!);
    this.client.write(responseHead(res.statusCode!, res.statusMessage ?? '', out), 'latin1');
    res.pipe(this.client);
  };

  onUpgrade = (res: IncomingMessage, upstream: Socket, upstreamHead: Buffer): void => {
    if (!this.finish()) {
      upstream.destroy();
      return;
    }
    const client = this.client;
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    const route = this.route;
    answered(route, this.started, 101);
    // The service's 101 head, end-to-end fields in their own spelling, then ours.
    const listed = connectionTokens(res.headers.connection);
    const raw = res.rawHeaders;
    let text = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (!HOP_BY_HOP.has(name) && !listed.has(name) && name !== 'via') text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    const via: Headers = { via: res.headers.via };
    if (route.proxy.via11 !== null) appendVia(via, route.proxy.via11);
    if (via.via !== undefined) text += `Via: ${via.via}\r\n`;
    text += `Upgrade: ${res.headers.upgrade ?? 'websocket'}\r\nConnection: Upgrade\r\n\r\n`;
    client.write(text, 'latin1');
    new Tunnel(this.ctx, route, client as Socket, upstream, this.clientHead, upstreamHead).start();
  };
}

function connectionTokens(connection: string | undefined): Set<string> {
  const out = new Set<string>();
  if (connection !== undefined) for (const t of connection.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

