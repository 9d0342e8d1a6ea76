import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gateway } from './gateway.ts';
import { gatewayAdminApi } from './admin-api/index.ts';
import { promText } from './metrics.ts';

export const ADMIN_PATHS = '/metrics, /status, /healthz, /readyz';

/**
 * The admin listener of a gateway without a supervisor: /metrics (Prometheus text),
 * /status (JSON), /healthz (the process is up) and /readyz (it serves a config). The
 * supervisor serves the same paths for all its workers (core/supervisor.ts).
 */
export function createAdminHandler(gw: Gateway): (req: IncomingMessage, res: ServerResponse) => void {
  const registry = gw.metrics.all;
  const api = gatewayAdminApi(gw);
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (api.owns(path)) return void api.handle(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: { code: 'ISG_ERR_BAD_REQUEST', message: 'admin endpoints answer GET only' } });
      return;
    }
    switch (path) {
      case '/metrics':
        registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': registry.contentType });
            res.end(promText(text));
          },
          (err: Error) => json(res, 500, { error: { code: 'ISG_ERR_INTERNAL', message: err.message } }),
        );
        return;
      case '/status':
        json(res, 200, gw.status());
        return;
      case '/healthz':
        json(res, 200, healthBody());
        return;
      case '/readyz': {
        const reason = gw.notReady();
        json(res, reason === null ? 200 : 503, readyBody(reason));
        return;
      }
    }
    json(res, 404, { error: { code: 'ISG_ERR_NO_ROUTE', message: `admin endpoints: ${ADMIN_PATHS}` } });
  };
}

/** /healthz: the process answers. */
export function healthBody(): { message: string } {
  return { message: 'ok' };
}

/** /readyz, in the shape of Kong's /status/ready: {"message":"ready"} or the reason it is not. */
export function readyBody(reason: string | null): { message: string } {
  return { message: reason ?? 'ready' };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
