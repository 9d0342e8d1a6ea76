import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminApi } from './admin-api/index.ts';
import { gatewayAdminApi } from './admin-api/index.ts';
import type { Gateway } from './gateway.ts';
import { promText } from './metrics.ts';

export const ADMIN_PATHS = '/metrics, /status, /healthz, /readyz';

/** What an admin listener answers from: one gateway's, or a supervisor's for all its workers. */
export type AdminSources = {
  api: AdminApi;
  /** Prometheus text and its content type. */
  metrics: { readonly contentType: string; text(): Promise<string> };
  status: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Why this process should not get traffic (/readyz), or null. */
  notReady: () => string | null;
  /** Why this process serves but not as it should (a cluster node cut off from Redis), or null: /readyz says it with 200. */
  degraded?: () => string | null;
};

/**
 * The admin listener: the admin REST API (core/admin-api/), then /metrics (Prometheus
 * text), /status (JSON), /healthz (the process is up) and /readyz (it serves a config).
 * The same for a gateway without a supervisor and for a supervisor (core/supervisor/admin.ts).
 */
export function adminHandler(s: AdminSources): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (s.api.owns(path)) return s.api.handle(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: { code: 'ISG_ERR_BAD_REQUEST', message: 'admin endpoints answer GET only' } });
      return;
    }
    try {
      switch (path) {
        case '/metrics': {
          const text = await s.metrics.text();
          res.writeHead(200, { 'content-type': s.metrics.contentType });
          res.end(text);
          return;
        }
        case '/status':
          json(res, 200, await s.status());
          return;
        case '/healthz':
          json(res, 200, healthBody());
          return;
        case '/readyz': {
          const reason = s.notReady();
          json(res, reason === null ? 200 : 503, readyBody(reason, s.degraded?.() ?? null));
          return;
        }
      }
      json(res, 404, { error: { code: 'ISG_ERR_NO_ROUTE', message: `admin endpoints: ${ADMIN_PATHS}` } });
    } catch (err) {
      json(res, 500, { error: { code: 'ISG_ERR_INTERNAL', message: (err as Error).message } });
    }
  };
}

/** The admin listener of a gateway without a supervisor. */
export function createAdminHandler(gw: Gateway): (req: IncomingMessage, res: ServerResponse) => void {
  const registry = gw.metrics.all;
  const handler = adminHandler({
    api: gatewayAdminApi(gw),
    metrics: { get contentType() { return registry.contentType; }, text: async () => promText(await registry.metrics(), (await gw.cluster?.metrics.metrics()) ?? '') },
    status: () => gw.status(),
    notReady: () => gw.notReady(),
    degraded: gw.cluster === undefined ? undefined : () => gw.cluster!.degraded(),
  });
  return (req, res) => void handler(req, res);
}

/** /healthz: the process answers. */
export function healthBody(): { message: string } {
  return { message: 'ok' };
}

/**
 * /readyz, in the shape of Kong's /status/ready: {"message":"ready"} or the reason it is not.
 * A node that serves but is degraded (cut off from the cluster's Redis) is still ready, as
 * a Kong data plane that lost its control plane stays ready on its last config; `degraded`
 * says why.
 */
export function readyBody(reason: string | null, degraded: string | null = null): { message: string; degraded?: string } {
  return reason === null && degraded !== null ? { message: 'ready', degraded } : { message: reason ?? 'ready' };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
