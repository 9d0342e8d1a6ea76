import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AdminApi } from '../admin-api/index.ts';
import { ADMIN_PATHS, healthBody, json, readyBody } from '../admin.ts';
import { answerClientError } from '../request-checks.ts';
import type { SupervisorMetrics } from './metrics.ts';

/** What the supervisor's admin listener answers from. */
export type AdminSources = {
  api: AdminApi;
  metrics: SupervisorMetrics;
  status: () => Promise<Record<string, unknown>>;
  /** Why the supervisor should not get traffic (/readyz), or null. */
  notReady: () => string | null;
};

/** Starts the supervisor's admin listener on host:port; resolves once it listens. */
export async function listenAdmin(s: AdminSources, host: string, port: number): Promise<Server> {
  const handler = supervisorAdminHandler(s);
  const server = createServer((req, res) => void handler(req, res));
  server.on('clientError', answerClientError);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  return server;
}

/** The supervisor's admin listener: the admin REST API, then the paths core/admin.ts serves for one gateway. */
function supervisorAdminHandler(s: AdminSources): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (s.api.owns(path)) return s.api.handle(req, res);
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
          json(res, reason === null ? 200 : 503, readyBody(reason));
          return;
        }
      }
      json(res, 404, { error: { code: 'ISG_ERR_NO_ROUTE', message: `admin endpoints: ${ADMIN_PATHS}` } });
    } catch (err) {
      json(res, 500, { error: { code: 'ISG_ERR_INTERNAL', message: (err as Error).message } });
    }
  };
}
