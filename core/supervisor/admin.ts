import { createServer, type Server } from 'node:http';
import { adminHandler, type AdminSources } from '../admin.ts';
import { answerClientError } from '../request-checks.ts';

export type { AdminSources };

/** Starts the supervisor's admin listener on host:port (core/admin.ts's handler over all workers); resolves once it listens. */
export async function listenAdmin(s: AdminSources, host: string, port: number): Promise<Server> {
  const handler = adminHandler(s);
  const server = createServer((req, res) => void handler(req, res));
  server.on('clientError', answerClientError);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  return server;
}
