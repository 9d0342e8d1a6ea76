import type { Worker } from 'node:cluster';
import type { CountersReply, CountersRequest } from '../state/ipc-counters.ts';

// The supervisor's side of its workers: the messages both ways and what it keeps per worker process.

/** Messages from a worker (core/worker.ts) to the supervisor. */
export type ToSupervisor =
  | { t: 'ready'; pid: number; port: number }
  | { t: 'spare'; pid: number }
  | { t: 'failed'; error: string }
  /** The worker is stopping (it stops accepting next, then drains): its slot is handed on now. */
  | { t: 'retiring' }
  | { t: 'pong'; seq: number }
  | { t: 'sandbox'; slot: number; tenant: string; instances: { id: string; key: string }[] }
  | { t: 'reloaded'; seq: number; ok: boolean; error?: string; version?: number }
  | { t: 'status'; id: number; status: Record<string, unknown> }
  /** The worker's metrics (prom-client's getMetricsAsJSON of its registries), for the supervisor's /metrics. */
  | { t: 'metrics'; id: number; metrics: unknown[] }
  /** The config file and its plugins' files, for --watch (after start and each reload). */
  | { t: 'watch'; files: string[] }
  /** pdk.counters: a tick's increments, answered from the node's store (core/state/ipc-counters.ts). */
  | CountersRequest;

/** Messages from the supervisor to a worker. */
export type ToWorker =
  | { t: 'ping'; seq: number }
  | { t: 'quarantine'; keys: string[]; modules?: number[] }
  | { t: 'reload'; seq: number }
  | { t: 'status'; id: number }
  | { t: 'metrics'; id: number }
  /** The slot the worker serves (its metrics' `worker` label), once it serves. */
  | { t: 'slot'; index: number }
  /** Sent with the slot's listening socket (core/supervisor/sockets.ts): serve on it. */
  | { t: 'activate' }
  | { t: 'stop' }
  | CountersReply;

export type WorkerState = {
  worker: Worker;
  index: number;
  beaconFile: string;
  pid: number;
  ready: boolean;
  startedAt: number;
  /** When the oldest ping still unanswered was sent (0: none outstanding). */
  unansweredSince: number;
  /** Sandbox slot -> tenant and instances, as the worker reported them. */
  slots: Map<number, { tenant: string; instances: { id: string; key: string }[] }>;
  cgroup: string | null;
  /** Set when we ended it on purpose (stop, wedge, memory): not a crash to count twice. */
  endedBy: string | null;
  /** A hot spare: loaded, not listening, waiting to replace a worker that dies. */
  spare: boolean;
  /** The spare finished loading. */
  loaded: boolean;
  /** Its slot was handed on (it died, or is draining to exit): not to be handed on again. */
  vacated: boolean;
};

/** How log lines name a worker process: its slot, or as the hot spare. */
export function who(w: WorkerState): { worker?: number; spare?: true; workerPid: number } {
  return w.spare ? { spare: true, workerPid: w.pid } : { worker: w.index, workerPid: w.pid };
}
