import type { Socket } from 'node:net';
import type { ProxyContext } from './proxy-context.ts';
import type { RuntimeRoute } from './route.ts';

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
export class Tunnel {
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

function ignore(): void {}
