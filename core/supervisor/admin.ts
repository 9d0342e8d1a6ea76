import { createServer, type Server } from 'node:http';
import { adminHandler, type AdminSources } from '../admin.ts';
import { supervisorCommitter } from '../admin-api/commit.ts';
import { clusterAdminApi, supervisorAdminApi } from '../admin-api/index.ts';
import type { ClusterSync } from '../cluster/sync.ts';
import type { ConfigInput } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { promText } from '../metrics.ts';
import { answerClientError } from '../request-checks.ts';
import type { SupervisorMetrics } from './metrics.ts';

export type { AdminSources };

export type SupervisorAdmin = {
  configFile: string;
  config: ConfigInput;
  log: Logger;
  /** A cluster node's link to the config in Redis. */
  cluster: ClusterSync | undefined;
  /** An admin API change, taken by every serving worker and the loaded spare before the API answers: the errors of those that refused. */
  reloadAll: () => Promise<string[]>;
  /** Told when the API writes the config file. */
  wrote: () => void;
  metrics: SupervisorMetrics;
  status: AdminSources['status'];
  notReady: AdminSources['notReady'];
};

/**
 * The supervisor's admin side: the admin API over the config file (one node) or over Redis
 * (a cluster node, whose sync starts here), /metrics (a cluster node's own appended), and
 * the listener on the config's admin host:port; resolves once it listens.
 */
export function startAdmin(a: SupervisorAdmin): Promise<Server> {
  const sync = a.cluster;
  // A cluster node: new versions from Redis, and the API's changes, go through the same round as the API's on one node.
  sync?.start(supervisorCommitter(a.configFile, a.reloadAll, a.wrote));
  const api = sync !== undefined ? clusterAdminApi(sync, a.config, a.log) : supervisorAdminApi(a.configFile, a.config, a.log, a.reloadAll, a.wrote);
  const degraded = sync === undefined ? undefined : () => sync.degraded();
  const own = a.metrics;
  const metrics = sync === undefined ? own : { contentType: own.contentType, text: async () => promText(await own.text(), await sync.metrics.metrics()) };
  return listenAdmin({ api, metrics, status: a.status, notReady: a.notReady, degraded }, a.config.admin.host, a.config.admin.port);
}

/** Starts the supervisor's admin listener on host:port (core/admin.ts's handler over all workers); resolves once it listens. */
async function listenAdmin(s: AdminSources, host: string, port: number): Promise<Server> {
  const handler = adminHandler(s);
  const server = createServer((req, res) => void handler(req, res));
  server.on('clientError', answerClientError);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => res());
  });
  return server;
}
