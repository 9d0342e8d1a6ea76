import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, createAdminServer, createProxyServer, listen, type Listen, type ListenOn, type ProxyCounts } from '../listeners.ts';
import type { ProxyContext } from '../proxy.ts';
import type { WebSocketProxy } from '../websocket.ts';

/**
 * A gateway's two HTTP servers: the proxy (made at once, listening only once listen() is
 * called) with its WebSocket tunnels and request count, and the admin listener, if any.
 */
export class GatewayServers {
  readonly counts: ProxyCounts;
  readonly #proxy: Server;
  readonly #websockets: WebSocketProxy;
  #admin: Server | null = null;

  constructor(ctx: ProxyContext) {
    ({ server: this.#proxy, websockets: this.#websockets, counts: this.counts } = createProxyServer(ctx));
  }

  get listening(): boolean {
    return this.#proxy.listening;
  }

  /** The proxy listens on `proxy`, then, where `admin` is given, the admin listener with its handler, made once the proxy listens. */
  async listen(proxy: ListenOn, admin: { at: Listen; handler: () => (req: IncomingMessage, res: ServerResponse) => void } | null): Promise<void> {
    await listen(this.#proxy, proxy);
    if (admin !== null) {
      this.#admin = createAdminServer(admin.handler());
      await listen(this.#admin, admin.at);
    }
  }

  get proxyAddress(): Listen {
    const a = this.#proxy.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get adminAddress(): Listen | null {
    const a = this.#admin?.address() as AddressInfo | undefined;
    return a === undefined ? null : { host: a.address, port: a.port };
  }

  /** Stops accepting on both; resolves once the proxy's requests in flight have ended (up to `graceMs`). */
  async close(graceMs: number): Promise<void> {
    // Tunnels are no longer the HTTP server's connections: closed here, or close() would wait for them.
    this.#websockets.closeAll();
    const closing = [closeServer(this.#proxy, graceMs)];
    if (this.#admin !== null) closing.push(closeServer(this.#admin, 0));
    await Promise.all(closing);
  }
}
