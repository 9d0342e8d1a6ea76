import type { ConfigInput } from '../config/types.ts';
import type { Gateway } from '../gateway.ts';
import type { Logger } from '../log.ts';
import { singleProcessCommitter, supervisorCommitter } from './commit.ts';
import { createAdminApi, type AdminApi } from './router.ts';
import { ConfigStore } from './store.ts';
import { ClusterStore } from '../cluster/store.ts';
import type { ClusterSync } from '../cluster/sync.ts';

export type { AdminApi };

/** The admin API of a gateway in one process (workers: 0), served by core/admin.ts. */
export function gatewayAdminApi(gw: Gateway): AdminApi {
  if (gw.cluster !== undefined) return createAdminApi({ store: new ClusterStore(gw.cluster), log: gw.log, tokens: gw.snapshot.compiled.input.admin.tokens });
  const store = new ConfigStore(gw.configFile, singleProcessCommitter(gw.configFile, (input) => gw.applyConfig(input)));
  return createAdminApi({ store, log: gw.log, tokens: gw.snapshot.compiled.input.admin.tokens });
}

/**
 * The admin API of a supervisor: `workers` are the processes that must take each change;
 * `onWrite` is told of every write of the file (a worker still loading then is reloaded once it is up).
 */
export function supervisorAdminApi(file: string, config: ConfigInput, log: Logger, reloadAll: () => Promise<string[]>, onWrite: () => void): AdminApi {
  return createAdminApi({ store: new ConfigStore(file, supervisorCommitter(file, reloadAll, onWrite)), log, tokens: config.admin.tokens });
}

/** The admin API of a cluster node's supervisor: Redis is the store, the supervisor's committer puts changes in its workers. */
export function clusterAdminApi(sync: ClusterSync, config: ConfigInput, log: Logger): AdminApi {
  return createAdminApi({ store: new ClusterStore(sync), log, tokens: config.admin.tokens });
}
