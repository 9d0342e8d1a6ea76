import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gateway } from './gateway.ts';
import { gatewayAdminApi } from './admin-api/index.ts';

/** The admin listener: /metrics (Prometheus text), /status (JSON) and the admin API (core/admin-api/). */
export function createAdminHandler(gw: Gateway): (req: IncomingMessage, res: ServerResponse) => void {
  const api = gatewayAdminApi(gw);
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (api.owns(path)) return void api.handle(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: { code: 'ISG_ERR_BAD_REQUEST', message: 'admin endpoints answer GET only' } });
      return;
    }
    if (path === '/metrics') {
      gw.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': gw.metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => json(res, 500, { error: { code: 'ISG_ERR_INTERNAL', message: err.message } }),
      );
      return;
    }
    if (path === '/status') {
      json(res, 200, gw.status());
      return;
    }
    json(res, 404, { error: { code: 'ISG_ERR_NO_ROUTE', message: 'admin endpoints: /metrics, /status' } });
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
