import type { ClusterSync } from '../cluster/sync.ts';
import type { Snapshot, UnhealthyInstance } from '../snapshot.ts';
import { VERSION } from '../version.ts';

export type GatewayStatusSources = {
  snapshot: Snapshot;
  /** Why the last reload was refused, or null. */
  lastReloadError: string | null;
  startedAt: number;
  /** Live plugin isolates of this process. */
  isolates: number;
  /** Requests the proxy listener received. */
  requests: number;
  unhealthyInstances: UnhealthyInstance[];
  cluster: ClusterSync | undefined;
};

/** A gateway's /status body: its config, counts and unhealthy plugin instances (a supervisor sums its workers'). */
export function gatewayStatus(s: GatewayStatusSources): Record<string, unknown> {
  const snap = s.snapshot;
  let instances = 0;
  for (const list of snap.compiled.instances.values()) instances += list.length;
  return {
    name: 'isogate',
    version: VERSION,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    config: { version: snap.version, file: snap.file, loadedAt: snap.loadedAt.toISOString(), lastReloadError: s.lastReloadError },
    counts: {
      tenants: snap.compiled.input.tenants.length,
      routes: snap.routes.length,
      pluginInstances: instances,
      isolates: s.isolates,
      inflight: snap.inflight,
      requests: s.requests,
    },
    unhealthyInstances: s.unhealthyInstances,
    ...(s.cluster === undefined ? {} : { cluster: s.cluster.status() }),
  };
}
