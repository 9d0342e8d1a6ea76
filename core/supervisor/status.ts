import type { ClusterSync } from '../cluster/sync.ts';
import type { Quarantined } from './quarantine.ts';
import type { WorkerSlots } from './slots.ts';
import type { WorkerAsks } from './asks.ts';
import type { WorkerState } from './types.ts';

/** Each worker's own status, with its state (`serving`, or `spare`); a worker that does not answer within a second says so. */
function askStatuses(asks: WorkerAsks, live: WorkerState[]): Promise<Record<string, unknown>[]> {
  return asks.ask(live, 'status', 1000, (w) => ({ ...who(w), error: 'no answer' }));
}

/** A worker's status as it answered, named by its slot and state. */
export function namedStatus(w: WorkerState, status: Record<string, unknown>): Record<string, unknown> {
  return { ...who(w), ...status };
}

/** How /status names a worker process: its slot and state, or the hot spare. */
function who(w: WorkerState): Record<string, unknown> {
  return w.spare ? { state: 'spare', pid: w.pid } : { worker: w.index, state: 'serving', pid: w.pid };
}

/**
 * The config and counts of the workers, summed where they add up (live isolates,
 * requests in flight and requests received, as isogate_isolates summed over its `worker` label).
 */
function summed(workers: Record<string, unknown>[]): { version: unknown; config: unknown; counts: Record<string, unknown> | undefined } {
  const first = workers.find((w) => w.version !== undefined) ?? {};
  let counts: Record<string, unknown> | undefined;
  for (const w of workers) {
    const c = w.counts as Record<string, number> | undefined;
    if (c === undefined) continue;
    if (counts === undefined) counts = { ...c, isolates: 0, inflight: 0, requests: 0 };
    (counts.isolates as number) += c.isolates;
    (counts.inflight as number) += c.inflight;
    (counts.requests as number) += c.requests;
  }
  return { version: first.version, config: first.config, counts };
}

export type StatusSources = {
  asks: WorkerAsks;
  slots: WorkerSlots;
  startedAt: number;
  /** How the proxy sockets are shared (ProxySockets.mode), once bound. */
  listener: string | undefined;
  quarantined: () => Quarantined[];
  cluster: ClusterSync | undefined;
};

/**
 * The supervisor's /status: the config and counts of the serving workers, summed where
 * they add up (see summed), each serving worker's own under workers.status (its pid, state
 * and counts.requests: how the kernel spread the connections), and the hot spare's.
 */
export async function supervisorStatus(s: StatusSources): Promise<Record<string, unknown>> {
  const { slots } = s;
  const loaded = slots.spare;
  const spare = loaded !== null && loaded.loaded && loaded.worker.isConnected() ? loaded : null;
  const asked = slots.ready();
  const workers = await askStatuses(s.asks, spare === null ? asked : [...asked, spare]);
  const spareStatus = spare === null ? null : workers.pop()!;
  const { version, config, counts } = summed(workers);
  return {
    name: 'isogate',
    version,
    pid: process.pid,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    config,
    counts,
    workers: {
      size: slots.size,
      ready: slots.ready().length,
      // The hot spare that takes over when a worker dies: loaded and waiting, or not yet.
      spareReady: slots.spare !== null && slots.spare.loaded,
      listener: s.listener,
      status: workers,
      spare: spareStatus,
    },
    quarantined: s.quarantined(),
    ...(s.cluster === undefined ? {} : { cluster: s.cluster.status() }),
  };
}
