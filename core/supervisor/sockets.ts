import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';

/** A libuv TCP handle as node:net makes one (bound, not listening): what a worker's net.Server listens on. */
export type TcpHandle = { getsockname(out: { port?: number }): number; close(): void };

// libuv's UV_TCP_REUSEPORT (uv.h, a public enum): the flag net.Server.listen({ reusePort })
// hands uv_tcp_bind. net._createServerHandle is what node:cluster's primary binds with.
const UV_TCP_REUSEPORT = 2;
type CreateHandle = (address: string, port: number, addressType: number, fd: undefined, flags: number) => TcpHandle | number;
const createServerHandle = (net as unknown as { _createServerHandle: CreateHandle })._createServerHandle;

/**
 * The proxy's listening sockets, made and held by the supervisor, which never accepts on
 * them (it binds; the workers call listen and accept). `reuseport` (Linux and the BSDs):
 * one SO_REUSEPORT socket per worker slot, as nginx's `listen ... reuseport`, so the kernel
 * spreads new connections over the slots by hashing each connection. `shared`: one socket
 * every worker accepts on (where the OS has no SO_REUSEPORT, or `listen.reusePort: false`),
 * as node:cluster's SCHED_NONE. Either way a slot's socket outlives its worker: connections
 * queued on it when the worker dies are not reset; they wait for the worker that takes
 * the slot over (the hot spare, given the same socket). A hot spare gets no socket until
 * it takes a slot, so it cannot accept before.
 */
export class ProxySockets {
  readonly mode: 'reuseport' | 'shared';
  readonly port: number;
  #handles: (TcpHandle | null)[];
  #bind: (port: number, flags: number) => TcpHandle;

  private constructor(mode: 'reuseport' | 'shared', port: number, handles: TcpHandle[], bind: (port: number, flags: number) => TcpHandle) {
    this.mode = mode;
    this.port = port;
    this.#handles = handles;
    this.#bind = bind;
  }

  /** Binds the sockets of `slots` worker slots on host:port (port 0: one free port for all). */
  static async open(at: { host: string; port: number; reusePort: boolean }, slots: number): Promise<ProxySockets> {
    const { address, family } = await lookup(at.host);
    const bind = (port: number, flags: number): TcpHandle => {
      const h = createServerHandle(address, port, family, undefined, flags);
      if (typeof h === 'number') throw bindError(h, address, port);
      // libuv defers EADDRINUSE from bind to the next call on the handle: ask now.
      const out: { port?: number } = {};
      const err = h.getsockname(out);
      if (err !== 0) {
        h.close();
        throw bindError(err, address, port);
      }
      return h;
    };
    if (at.reusePort) {
      // A port already taken (another gateway, even one with SO_REUSEPORT, which would
      // otherwise share its connections with us) refuses a plain bind: fail as without reuseport.
      if (at.port !== 0) bind(at.port, 0).close();
      let first: TcpHandle | null = null;
      try {
        first = bind(at.port, UV_TCP_REUSEPORT);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTSUP') throw err; // no SO_REUSEPORT here: one shared socket
      }
      if (first !== null) {
        const port = portOf(first);
        const handles = [first];
        try {
          for (let i = 1; i < slots; i++) handles.push(bind(port, UV_TCP_REUSEPORT));
        } catch (err) {
          for (const h of handles) h.close();
          throw err;
        }
        return new ProxySockets('reuseport', port, handles, bind);
      }
    }
    const shared = bind(at.port, 0);
    return new ProxySockets('shared', portOf(shared), Array.from({ length: slots }, () => shared), bind);
  }

  /** The socket the worker of `slot` listens on. */
  of(slot: number): TcpHandle {
    const h = this.#handles[slot];
    if (h == null) throw new Error(`no proxy socket for worker slot ${slot}`);
    return h;
  }

  /**
   * The slot gets no worker again (its config cannot start): its socket is closed, so the
   * kernel stops choosing it (what was queued on it is reset).
   */
  release(slot: number): void {
    const h = this.#handles[slot];
    if (h == null) return;
    this.#handles[slot] = null;
    if (!this.#handles.includes(h)) h.close();
  }

  /**
   * The slot's worker is gone and no spare can take its socket at once, while other
   * workers serve: rather than have its share of new connections wait for a worker that
   * takes seconds to start, close the socket (what is queued on it is reset, as when any
   * SO_REUSEPORT socket closes) and bind a new one for the slot, which joins the group only
   * when its next worker listens on it. With one shared socket there is nothing to do.
   */
  renew(slot: number): void {
    const old = this.#handles[slot];
    if (old == null || this.mode === 'shared') return;
    this.#handles[slot] = this.#bind(this.port, UV_TCP_REUSEPORT);
    old.close();
  }

  /** Closes the supervisor's hold on every socket; each closes once its worker has closed its own. */
  close(): void {
    for (let i = 0; i < this.#handles.length; i++) this.release(i);
  }
}

function portOf(h: TcpHandle): number {
  const out: { port?: number } = {};
  h.getsockname(out);
  return out.port!;
}

function bindError(err: number, address: string, port: number): NodeJS.ErrnoException {
  const code = getSystemErrorName(err);
  const e: NodeJS.ErrnoException = new Error(`listen ${code}: ${address}:${port}`);
  e.code = code;
  return e;
}
