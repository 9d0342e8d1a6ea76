import { readFileSync } from 'node:fs';
import type { ConfigInput } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { who, type ToWorker, type WorkerState } from './types.ts';

/**
 * The supervisor's health tick: pings every worker process, and kills one that is stuck
 * loading its config, stopped answering pings (wedged) or grew above workerMemoryMb. The
 * exit that follows is handled like any other, with the reason set in `endedBy`.
 */
export class HealthCheck {
  readonly #settings: ConfigInput['supervisor'];
  readonly #log: Logger;
  /** Every worker process of the supervisor (serving and spare). */
  readonly #workers: () => WorkerState[];
  #lastTick = Date.now();
  #pingSeq = 0;

  constructor(settings: ConfigInput['supervisor'], log: Logger, workers: () => WorkerState[]) {
    this.#settings = settings;
    this.#log = log;
    this.#workers = workers;
  }

  tick(): void {
    const { healthIntervalMs, healthTimeoutMs, startTimeoutMs, workerMemoryMb } = this.#settings;
    const now = Date.now();
    // If the supervisor itself was held up (a stalled machine, a debugger), the workers'
    // silence says nothing about them: judge nobody this tick, ping again.
    const stalled = now - this.#lastTick > 2 * healthIntervalMs + 100;
    this.#lastTick = now;
    const seq = ++this.#pingSeq;
    for (const w of this.#workers()) {
      if (!w.worker.isConnected() || w.endedBy !== null) continue;
      if (stalled) {
        w.unansweredSince = 0;
      } else if (!w.ready && !w.loaded && now - w.startedAt > startTimeoutMs) {
        // Every state has a deadline: starting (loading the config) too.
        this.#end(w, 'stuck', `still loading its config after ${now - w.startedAt} ms`);
        continue;
      } else if ((w.ready || w.loaded) && w.unansweredSince !== 0 && now - w.unansweredSince > healthTimeoutMs) {
        this.#end(w, 'wedged', `no answer to pings for ${now - w.unansweredSince} ms`);
        continue;
      }
      const rss = rssMb(w.pid);
      if (rss !== null && rss > workerMemoryMb) {
        this.#end(w, 'memory', `resident memory ${rss} MB is above workerMemoryMb ${workerMemoryMb}`);
        continue;
      }
      if (w.ready || w.loaded) {
        if (w.unansweredSince === 0) w.unansweredSince = now;
        w.worker.send({ t: 'ping', seq } satisfies ToWorker);
      }
    }
  }

  #end(w: WorkerState, reason: string, why: string): void {
    w.endedBy = reason;
    this.#log.error({ ...who(w), reason }, `killing ${w.spare ? 'hot spare' : 'worker'}: ${why}`);
    w.worker.process.kill('SIGKILL');
  }
}

/** When a worker slot dies: back off its replacement only if it keeps dying right after starting. */
export class CrashLoop {
  /** Slot -> when it died in the last ten seconds. */
  #deaths = new Map<number, number[]>();

  /** Counts a death of slot `index`; the delay before a new worker is forked for it. */
  died(index: number): number {
    const now = Date.now();
    const recent = (this.#deaths.get(index) ?? []).filter((t) => now - t < 10_000);
    recent.push(now);
    this.#deaths.set(index, recent);
    return recent.length <= 3 ? 0 : Math.min(5_000, 250 * 2 ** (recent.length - 3));
  }
}

function rssMb(pid: number): number | null {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Math.round((Number(statm[1]) * 4096) / (1024 * 1024));
  } catch {
    return null;
  }
}
