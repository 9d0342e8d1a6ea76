import type ivm from 'isolated-vm';
import type { Fault } from './outcome.ts';
import { failed, type RunResult } from './run-result.ts';
import type { TenantProgram } from './program.ts';
import { KILL_NONE, type WatchCells, type Watchdog } from './watchdog.ts';
import { beacon } from './beacon.ts';
import { createBlank, type WarmIsolates } from './blank.ts';
import { RetryLoad, loadPlugins, moduleDeadlineMs, type Entry, type LoadStage } from './isolate-load.ts';

export type SandboxEvents = {
  /** An isolate was created (cold start), with the time it took. */
  onIsolateCreated?(tenant: string, ms: number): void;
  onIsolateDisposed?(tenant: string, reason: string): void;
  /** The process must stop: V8 lost control of an isolate. */
  onCatastrophicError?(tenant: string, message: string): void;
  /** Where ready-made blank isolates come from (cold starts then only load plugins). */
  warm?: WarmIsolates;
  /** A plugin was disabled for this program: its module failed to load or its configure failed (once per plugin). */
  onPluginDisabled?(tenant: string, fault: Fault): void;
  /** The operations of a plugin's configure (its log lines), unchecked: validate before use. */
  onConfigureOps?(tenant: string, ops: readonly unknown[]): void;
};

/** A tenant's loaded isolate, with its runtime's entry points. */
export type Live = Entry & {
  isolate: ivm.Isolate;
  context: ivm.Context;
  /** The isolate's cpuTime after its previous call (0 for a new one: its module loading is charged with its first call). */
  cpuMark: bigint;
};

/** What a drop tells the sandbox's user: the next isolate registers with the pool on its first call. */
export type PoolMark = { touchedAt: number };

/** Slack added to every call deadline (a chain's budget, the load's, the log batch's). */
export const CALL_SLACK_MS = 20;

/**
 * The lifecycle of one tenant's isolate: created on first use (and again for each plugin
 * whose module or configure took it down), dropped after a fault that left it unusable,
 * released by the pool, disposed with the sandbox. Remembers, for the sandbox's life, which
 * plugins are disabled (their module could not load, or their configure failed).
 */
export class IsolateLifecycle {
  /** Plugin index -> why it is disabled: its module could not load or its configure failed (kept for the sandbox's life). */
  readonly broken = new Map<number, Fault>();
  #program: TenantProgram;
  #tenant: string;
  #watchdog: Watchdog;
  #events: SandboxEvents;
  #cells: WatchCells;
  #slot: number;
  #mark: PoolMark;
  #live: Live | null = null;
  #disposed = false;
  /** Call deadline for creating the isolate: every instance's CPU limit, each plugin's once more for its configure, plus slack. */
  #loadBudgetMs: number;

  constructor(program: TenantProgram, watchdog: Watchdog, events: SandboxEvents, cells: WatchCells, slot: number, mark: PoolMark) {
    this.#program = program;
    this.#tenant = program.tenant;
    this.#watchdog = watchdog;
    this.#events = events;
    this.#cells = cells;
    this.#slot = slot;
    this.#mark = mark;
    this.#loadBudgetMs = program.instances.reduce((sum, i) => sum + i.cpuMs, 0) + program.plugins.reduce((sum, _p, k) => sum + moduleDeadlineMs(program, k), 0) + 10 * CALL_SLACK_MS;
  }

  /** The live isolate, if any, without making one. */
  get current(): Live | null {
    return this.#live;
  }

  get isLive(): boolean {
    return this.#live !== null && !this.#live.isolate.isDisposed;
  }

  /**
   * Runs #ensure, again while a plugin's module or configure took the isolate down with it.
   * Each retry leaves one more plugin out, so there are at most as many as plugins, each
   * bounded by that plugin's CPU limit: no more than one load of plugins all near their limits.
   */
  ensureRetrying(): Live {
    for (let tries = 0; ; tries++) {
      try {
        return this.#ensure();
      } catch (err) {
        if (!(err instanceof RetryLoad) || tries >= this.#program.plugins.length) throw err;
      }
    }
  }

  /**
   * Creates the isolate and loads the tenant's plugins. Plugin code runs here (module
   * top-level code, export getters, configure), so this runs under the watchdog like any
   * call: each plugin's module and configure get its instance's CPU limit, the whole load a call deadline, and the
   * crash beacon names the plugin if the process dies or wedges meanwhile.
   */
  #ensure(): Live {
    // #live is cleared whenever its isolate is disposed (drop): no native isDisposed
    // check per call (it costs more than the rest of this function).
    const live = this.#live;
    if (live !== null) {
      // The watchdog may judge a deadline passed just as a call returns, and dispose the
      // isolate after the host looked: its kill flag, set before it disposes, says so.
      if (this.#cells.killed[0] === KILL_NONE) return live;
      this.drop(live, 'cpu');
    }
    if (this.#disposed) throw new Error(`sandbox of tenant ${this.#tenant} was disposed`);
    const t0 = performance.now();
    const tenant = this.#tenant;
    const events = this.#events;
    const cells = this.#cells;
    const program = this.#program;
    const blank = events.warm?.take(program.memoryMb) ?? createBlank(program.memoryMb);
    blank.onCatastrophicError = (message) => events.onCatastrophicError?.(tenant, message);
    const { isolate, context } = blank;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.pluginDeadline[0] = 0;
    this.#watchdog.watch(this.#slot, isolate, cells);
    cells.callDeadline[0] = this.#loadBudgetMs;
    beacon.enter(this.#slot, cells.step);
    try {
      const entry = loadPlugins(blank, program, cells, this.broken, {
        disable: (index, fault) => {
          if (this.broken.has(index)) return;
          this.broken.set(index, fault);
          events.onPluginDisabled?.(tenant, fault);
        },
        classify: (err, stage) => this.loadFailed(err, stage).faults[0],
        onConfigureOps: events.onConfigureOps === undefined ? undefined : (ops) => events.onConfigureOps!(tenant, ops),
      });
      const next: Live = { isolate, context, ...entry, cpuMark: 0n };
      this.#live = next;
      events.onIsolateCreated?.(tenant, performance.now() - t0);
      return next;
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    } finally {
      cells.callDeadline[0] = 0;
      beacon.leave();
    }
  }

  /**
   * A load that failed: the plugin whose code was running (its module, or its configure:
   * `stage`) is named, as for a call. `err` is isolated-vm's or ours, never a value plugin
   * code made (the runtime catches those).
   */
  loadFailed(err: unknown, stage: LoadStage = 'module'): RunResult {
    const cells = this.#cells;
    const culprit = cells.current[0];
    const during = stage === 'module' ? 'while its module loaded' : 'while its configure ran';
    if (cells.killed[0] !== KILL_NONE) return failed('cpu', culprit, `stopped by the watchdog ${during}`);
    const message = err instanceof Error ? String(err.message) : 'unknown error';
    if (/memory limit/i.test(message)) return failed('memory', culprit, `isolate heap limit reached ${during}`);
    return failed('threw', culprit, `${stage === 'module' ? 'plugin module failed to load' : 'plugin configure failed'}: ${message.slice(0, 300)}`);
  }

  /** Disposes `live` (if still the live one, forgets it) and tells the events why. */
  drop(live: Live, reason: string): void {
    if (this.#live === live) this.#live = null;
    this.#mark.touchedAt = -Infinity; // the next isolate registers with the pool on its first call
    try {
      if (!live.isolate.isDisposed) live.isolate.dispose();
    } catch {
      // the watchdog disposed it between the check and the call
    }
    this.#events.onIsolateDisposed?.(this.#tenant, reason);
  }

  /** Drops the live isolate after a bug of ours; forgets it even if dropping fails. */
  discard(reason: string): void {
    const live = this.#live;
    if (live !== null) {
      try {
        this.drop(live, reason);
      } catch {
        this.#live = null;
      }
    }
  }

  /** Heap statistics of the live isolate, or null when none exists. */
  heap(): { used: number; total: number; external: number } | null {
    const live = this.#live;
    if (live === null || live.isolate.isDisposed) return null;
    const h = live.isolate.getHeapStatisticsSync();
    return { used: h.used_heap_size, total: h.total_heap_size, external: h.externally_allocated_size };
  }

  /** Frees the isolate; the next call creates a new one. */
  release(reason: string): void {
    const live = this.#live;
    if (live !== null) this.drop(live, reason);
  }

  /** Frees the isolate for good: a later call throws. */
  dispose(): void {
    this.release('disposed');
    this.#disposed = true;
  }
}
