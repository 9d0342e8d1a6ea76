import { STATUS_CODES, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, errorBody, type ErrorCode } from './errors.ts';
import { HOP_BY_HOP, appendVia, endToEnd } from './headers.ts';
import { exitResponse, newTarget, upstreamHeaders, upstreamTarget, type ProxyContext } from './proxy.ts';
import { resolveTarget } from './request-target.ts';
import { failureCode, newErrorId, newRequestState, runBeforeUpstream, runPhase, type RequestFailure, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { enterRoute, routeRewritten } from './rewrite-first.ts';
import { requestJson } from '../pdk-bridge/host/snapshots.ts';
import type { OpTarget } from '../pdk-bridge/host/ops.ts';
import { badRequestCode } from './request-checks.ts';
import type { RuntimeRoute, TenantStage } from './route.ts';
import { EARLY_HEADER_FILTER } from '../pdk-bridge/phases.ts';

type Headers = Record<string, string | string[] | undefined>;

/**
 * WebSocket proxying (HTTP/1.1 Upgrade, RFC 6455). The handshake is a request like any
 * other: its tenant's rewrite chain, routed, the route's access chain (which may refuse it
 * with exit(), sent to the client as an ordinary HTTP response), then sent to the
 * service over a connection of its own (not a pooled one: the tunnel keeps it). When the
 * service answers 101, bytes flow both ways until either side closes or the tunnel has
 * been idle for `idleTimeoutMs`. A service's refusal (any other status) is relayed as is.
 *
 * Limits: the handshake's header block is bounded by node:http on both sides (16 KB);
 * each direction holds at most the socket's write buffer plus one read (the reading side is
 * paused until the other drains); a data message (its frames summed, as they are on the
 * wire) above `maxMessageBytes` closes the tunnel, with close code 1009 to a client that
 * sent it. headerFilter, bodyFilter and log do not run for a tunnel.
 */
export class WebSocketProxy {
  readonly #ctx: ProxyContext;
  /** Client sockets of handshakes and tunnels, so that stop() can close them (the HTTP server no longer tracks them). */
  readonly #live = new Set<Duplex>();

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  get open(): number {
    return this.#live.size;
  }

  /** Closes every tunnel and pending handshake (the gateway is stopping). */
  closeAll(): void {
    for (const socket of this.#live) socket.destroy();
    this.#live.clear();
  }

  /** node:http's 'upgrade' listener of the proxy server. */
  handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const live = this.#live;
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    socket.on('error', ignore);
    const ctx = this.#ctx;
    const started = performance.now();
    const bad = badRequestCode(req);
    if (bad !== null) {
      refuse(socket, ERRORS[bad].status, errorHeaders(), Buffer.from(errorBody(bad)));
      return;
    }
    const t = resolveTarget(ctx, ctx.current(), req);
    if (typeof t === 'string') {
      refuse(socket, ERRORS[t].status, errorHeaders(), Buffer.from(errorBody(t)));
      return;
    }
    // Until the tenant's rewrite chain has run and the route is chosen, the tenant's stage stands for the route.
    const stage = t.stage;
    const first = stage ?? t.match!.route;
    try {
      if (first.sandbox !== null && !first.sandbox.allow()) {
        first.metrics.throttled.inc();
        const headers = errorHeaders();
        const errorId = newErrorId();
        headers['retry-after'] = String(first.sandbox.retryAfterSeconds());
        headers['x-isogate-error-id'] = errorId;
        answered(first, started, 503);
        refuse(socket, 503, headers, Buffer.from(errorBody('ISG_ERR_TENANT_THROTTLED', errorId)));
        return;
      }
      const target = newTarget(first, upstreamHeaders(req, first, false), t.rawPath, stage === null ? t.match!.depth : 0, t.query);
      const state = newRequestState(first);
      const hs: Pending = { req, socket, head, t, target, state, started };
      if (stage === null) {
        this.#access(hs, t.match!.route, t.match!.depth, undefined);
        return;
      }
      const failure = runPhase(ctx, stage, PHASE.REWRITE, requestJson(req, t.path, t.query, stage, 0, Math.floor(performance.timeOrigin + started)), '', state, target, '');
      if (failure instanceof Promise) {
        failure.then((f) => { if (!socket.destroyed) this.#afterRewrite(hs, stage, f); }).catch((err: unknown) => this.#lost(socket, started, stage, err));
        return;
      }
      this.#afterRewrite(hs, stage, failure);
    } catch (err) {
      this.#lost(socket, started, first, err);
    }
  };

  /** The tenant's rewrite answered, or the route within the tenant is chosen on the handshake as rewritten (core/rewrite-first.ts). */
  #afterRewrite(hs: Pending, stage: TenantStage, failure: RequestFailure | null): void {
    if (failure !== null || hs.target.exit !== null) {
      this.#afterPlugins(hs, stage, failure);
      return;
    }
    const to = routeRewritten(stage, hs.t.match, hs.req, hs.target, hs.t.path, hs.t.rawPath);
    if (to === null) {
      fail(hs.socket, stage, hs.started, 'ISG_ERR_NO_ROUTE'); // counted as the tenant's, route ''
      return;
    }
    enterRoute(to.match.route, to.match.depth, to.rawPath, hs.target, hs.state, hs.req.headers.host);
    this.#access(hs, to.match.route, to.match.depth, to.path === hs.t.path ? undefined : to.path);
  }

  /** The route's access chain (a route's chain has no rewrite phase), then #afterPlugins. */
  #access(hs: Pending, route: RuntimeRoute, depth: number, routedPath: string | undefined): void {
    if (!route.runsAccess) {
      this.#afterPlugins(hs, route, null);
      return;
    }
    const { req, t } = hs;
    // a handshake has no headerFilter, so none rides early in its access crossing
    hs.state.phases &= ~EARLY_HEADER_FILTER;
    const failure = runBeforeUpstream(this.#ctx, route, requestJson(req, t.path, t.query, route, depth, Math.floor(performance.timeOrigin + hs.started), routedPath), hs.state, hs.target);
    if (failure instanceof Promise) {
      failure.then((f) => { if (!hs.socket.destroyed) this.#afterPlugins(hs, route, f); }).catch((err: unknown) => this.#lost(hs.socket, hs.started, route, err));
      return;
    }
    this.#afterPlugins(hs, route, failure);
  }

  #lost(socket: Duplex, started: number, route: RuntimeRoute, err: unknown): void {
    this.#ctx.log.error({ err, route: route.id }, 'internal error while proxying a WebSocket handshake');
    fail(socket, route, started, 'ISG_ERR_INTERNAL');
  }

  /** After rewrite and access (at once, or after their async PDK calls): the failure, the plugin's exit, or the handshake upstream. */
  #afterPlugins(hs: Pending, route: RuntimeRoute, failure: RequestFailure | null): void {
    const { req, socket, target, started } = hs;
    if (failure !== null) {
      fail(socket, route, started, failureCode(failure), failure.errorId);
      return;
    }
    if (target.exit !== null) {
      const exit = exitResponse(target);
      answered(route, started, exit.status);
      refuse(socket, exit.status, exit.headers, exit.body);
      return;
    }
    const headers = target.upstreamHeaders;
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade;
    new Handshake(this.#ctx, route, socket, hs.head, started).send(upstreamTarget(route, target, hs.t.bareQuery), headers);
  }
}

/** A handshake between its phases. */
type Pending = {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly t: Exclude<ReturnType<typeof resolveTarget>, string>;
  readonly target: OpTarget;
  readonly state: RequestState;
  readonly started: number;
};

/** For the server's shouldUpgradeCallback: only WebSocket upgrades become tunnels; any other Upgrade is proxied as a plain request without it. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  if (req.method !== 'GET' || upgrade === undefined) return false;
  for (const token of upgrade.split(',')) if (token.trim().toLowerCase() === 'websocket') return true;
  return false;
}

function ignore(): void {}

function errorHeaders(): Headers {
  return { 'content-type': 'application/json' };
}

function answered(route: RuntimeRoute, started: number, status: number): void {
  route.metrics.status(status).inc();
  route.metrics.duration.observe((performance.now() - started) / 1000);
}

function fail(socket: Duplex, route: RuntimeRoute, started: number, code: ErrorCode, errorId?: string): void {
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
function refuse(socket: Duplex, status: number, headers: Headers, body: Buffer | null): void {
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
class Handshake {
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

/** Close frames a server may send (unmasked): 1001 going away, 1009 message too big. */
const CLOSE_GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);
const CLOSE_TOO_BIG = Buffer.from([0x88, 0x02, 0x03, 0xf1]);

/**
 * Follows the frame headers of one direction (RFC 6455 section 5.2) without touching the
 * payload: enough to bound the size of a message and to know when a close frame of ours
 * could be put between two frames.
 */
export class FrameMeter {
  readonly max: number;
  /** Payload bytes of the current frame still to come. */
  remaining = 0;
  /** The header being read (at most 14 bytes), and how much of it is in. */
  readonly header = Buffer.alloc(14);
  have = 0;
  /** Payload bytes of the current data message so far. */
  message = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** Between two frames (a frame of ours may be sent here). */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.have === 0;
  }

  /** Follows `chunk`; false when a message goes over the limit. */
  feed(chunk: Buffer): boolean {
    const h = this.header;
    for (let i = 0; i < chunk.length; ) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      h[this.have++] = chunk[i++];
      if (this.have < 2) continue;
      const len7 = h[1] & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
      if (this.have < need) continue;
      this.have = 0;
      const len = len7 < 126 ? len7 : len7 === 126 ? h.readUInt16BE(2) : h.readUInt32BE(2) * 2 ** 32 + h.readUInt32BE(6);
      const opcode = h[0] & 0x0f;
      if (opcode < 8) {
        // A data frame (opcode 0 continues the message); control frames come between fragments.
        this.message = opcode === 0 ? this.message + len : len;
        if (this.message > this.max) return false;
        if ((h[0] & 0x80) !== 0) this.message = 0;
      }
      this.remaining = len;
    }
    return true;
  }
}

/** An open tunnel: bytes both ways, with backpressure, an idle timeout and the message bound. */
class Tunnel {
  readonly ctx: ProxyContext;
  readonly route: RuntimeRoute;
  readonly client: Socket;
  readonly upstream: Socket;
  readonly fromClient: FrameMeter;
  readonly toClient: FrameMeter;
  closed = false;

  constructor(ctx: ProxyContext, route: RuntimeRoute, client: Socket, upstream: Socket, clientHead: Buffer, upstreamHead: Buffer) {
    this.ctx = ctx;
    this.route = route;
    this.client = client;
    this.upstream = upstream;
    const max = route.proxy.websocket.maxMessageBytes;
    this.fromClient = new FrameMeter(max);
    this.toClient = new FrameMeter(max);
    if (upstreamHead.length > 0) this.onUpstreamData(upstreamHead);
    if (clientHead.length > 0) this.onClientData(clientHead);
  }

  start(): void {
    const { client, upstream } = this;
    if (this.closed) return;
    const idle = this.route.proxy.websocket.idleTimeoutMs;
    upstream.on('error', ignore);
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      s.setTimeout(idle, this.onIdle);
      s.once('close', this.onClose);
    }
    client.on('data', this.onClientData);
    upstream.on('data', this.onUpstreamData);
    client.on('drain', this.onClientDrain);
    upstream.on('drain', this.onUpstreamDrain);
    // A side that finishes sending: the other side is told (half-close), as TCP does.
    client.once('end', this.onClientEnd);
    upstream.once('end', this.onUpstreamEnd);
  }

  onClientData = (chunk: Buffer): void => {
    if (!this.fromClient.feed(chunk)) {
      this.close(CLOSE_TOO_BIG, 'the client sent a message above maxMessageBytes');
      return;
    }
    if (!this.upstream.write(chunk)) this.client.pause();
  };

  onUpstreamData = (chunk: Buffer): void => {
    if (!this.toClient.feed(chunk)) {
      this.close(null, 'the upstream sent a message above maxMessageBytes');
      return;
    }
    if (!this.client.write(chunk)) this.upstream.pause();
  };

  onClientDrain = (): void => {
    this.upstream.resume();
  };

  onUpstreamDrain = (): void => {
    this.client.resume();
  };

  onClientEnd = (): void => {
    this.upstream.end();
  };

  onUpstreamEnd = (): void => {
    this.client.end();
  };

  onIdle = (): void => {
    this.close(CLOSE_GOING_AWAY, 'idle timeout');
  };

  onClose = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.upstream.destroy();
  };

  /** Ends the tunnel; `frame` goes to the client first when it can sit between two frames. */
  close(frame: Buffer | null, why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.log.info({ tenant: this.route.tenant, route: this.route.name }, `WebSocket tunnel closed: ${why}`);
    this.upstream.destroy();
    const client = this.client;
    if (frame !== null && this.toClient.atBoundary && client.writable) {
      client.write(frame);
      client.destroySoon(); // once the frame is written
    } else {
      client.destroy();
    }
  }
}
