import { Gauge, Registry } from 'prom-client';

/** What the cluster metrics read from the node's ClusterSync, at scrape time. */
export type ClusterFigures = { connected(): boolean; version(): number; refused(): boolean };

/** The node's cluster gauges (one registry, the supervisor's or the one process's, never per worker). */
export function clusterMetrics(f: ClusterFigures): Registry {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({ name: 'isogate_cluster_redis_connected', help: "1 while the node reaches the cluster's Redis, else 0 (it serves its last good config).", registers, collect() { this.set(f.connected() ? 1 : 0); } });
  new Gauge({ name: 'isogate_cluster_config_version', help: 'The cluster config version this node runs (0: none from Redis yet).', registers, collect() { this.set(f.version()); } });
  new Gauge({ name: 'isogate_cluster_config_refused', help: "1 while the newest version in Redis was refused on this node (it did not validate or compile here), else 0.", registers, collect() { this.set(f.refused() ? 1 : 0); } });
  return registry;
}
