import type ivm from 'isolated-vm';
import { OUTCOME, type FaultOutcome } from './outcome.ts';
import { failed, type RunResult } from './run-result.ts';
import { KILL_NONE, KILL_WALL, type WatchCells } from './watchdog.ts';
import { beacon } from './beacon.ts';
import { HEAP_CHECK_AFTER_MS, heapOverLimit } from './heap-check.ts';
import type { IsolateLifecycle, Live } from './isolate-lifecycle.ts';

/** Only the log batch passes a structure in; a phase call passes numbers and strings, which cross without a copy step. */
export const COPY_ARGS = { arguments: { copy: true } } as const;

/** Where a call's cost goes: the sandbox's `lastCallMs`, read by its user to charge the tenant. */
export type CallMeter = { lastCallMs: number };

/** A call the isolate did not survive, and the fault it ends as. */
export class Crashed {
  readonly result: RunResult;
  constructor(result: RunResult) {
    this.result = result;
  }
}

const KILLED_AS_IT_RETURNED = new Error('stopped by the watchdog as the call returned');

/**
 * One guarded call into a tenant's live isolate, synchronous (`applySync`) without a
 * per-call timer: the call deadline is armed in the watch cells for the process-wide
 * Watchdog, the crash beacon is told, and afterwards the call's CPU is charged, a costly
 * call's heap looked at, and a call the isolate did not survive classified (and the
 * isolate dropped when it cannot be used again).
 */
export class GuardedCall {
  #cells: WatchCells;
  #slot: number;
  #isolates: IsolateLifecycle;
  #memoryMb: number;
  #meter: CallMeter;

  constructor(cells: WatchCells, slot: number, isolates: IsolateLifecycle, memoryMb: number, meter: CallMeter) {
    this.#cells = cells;
    this.#slot = slot;
    this.#isolates = isolates;
    this.#memoryMb = memoryMb;
    this.#meter = meter;
  }

  /**
   * Calls `fn` in `live` with the call deadline armed for `budgetMs`, then fetches the
   * result of a chain that awaited (it exists only after the isolate ran its microtasks).
   * A call the isolate did not survive comes back as Crashed.
   */
  call(live: Live, budgetMs: number, fn: ivm.Reference<(...args: unknown[]) => string | undefined>, args: unknown[], options?: typeof COPY_ARGS): unknown {
    const cells = this.#cells;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.earlyPart[0] = 0;
    cells.callDeadline[0] = budgetMs;
    const started = performance.now();
    beacon.enter(this.#slot, cells.step);
    let out: unknown;
    let error: unknown = null;
    try {
      out = fn.applySync(undefined, args, options);
      if (out === undefined) out = live.collect.applySync(undefined, []);
    } catch (err) {
      error = err ?? new Error('unknown error');
    }
    cells.callDeadline[0] = 0;
    beacon.leave();
    // A call that returned while the watchdog was stopping it ends as the kill it was.
    if (error === null && cells.killed[0] !== KILL_NONE) error = KILLED_AS_IT_RETURNED;
    if (error !== null) {
      this.#meter.lastCallMs = performance.now() - started;
      return new Crashed(this.#crashed(live, error));
    }
    this.#chargeCpu(live, started);
    if (this.#meter.lastCallMs >= HEAP_CHECK_AFTER_MS) {
      let over: boolean;
      try {
        over = heapOverLimit(live.isolate, this.#memoryMb);
      } catch (err) {
        // Disposed by the watchdog after the kill check above (its limit passed as the call
        // returned; it sets the kill flag before it disposes): the call ends as that kill.
        return new Crashed(this.#crashed(live, err));
      }
      if (over) {
        this.#isolates.drop(live, 'memory');
        return new Crashed(failed('memory', cells.current[0], 'isolate heap limit exceeded during the call'));
      }
    }
    return out;
  }

  #chargeCpu(live: Live, started: number): void {
    let now: bigint;
    try {
      now = live.isolate.cpuTime;
    } catch {
      // Disposed by the watchdog after the check above: the result stands, the next call
      // sees the kill flag and starts a new isolate. Charge the call's wall time.
      this.#meter.lastCallMs = performance.now() - started;
      return;
    }
    this.#meter.lastCallMs = Number(now - live.cpuMark) / 1e6;
    live.cpuMark = now;
  }

  /** `live` is the isolate the call ran in, still the lifecycle's live one (nothing drops it during a call). */
  #crashed(live: Live, err: unknown): RunResult {
    const cells = this.#cells;
    const culprit = cells.current[0];
    const message = err instanceof Error ? String(err.message) : 'unknown error';
    let outcome: FaultOutcome;
    let detail: string;
    if (cells.killed[0] !== KILL_NONE) {
      outcome = 'cpu';
      detail = cells.killed[0] === KILL_WALL ? 'stopped by the watchdog: the call ran 1 s of wall time past its CPU budget' : 'stopped by the watchdog after its CPU limit';
    } else if (/memory limit/i.test(message)) {
      outcome = 'memory';
      detail = 'isolate heap limit reached';
    } else if (live.isolate.isDisposed) {
      outcome = 'memory';
      detail = 'isolate was disposed during execution';
    } else {
      outcome = 'threw';
      detail = 'runtime error: ' + message.slice(0, 200);
    }
    if (live.isolate.isDisposed || OUTCOME[outcome].dropsIsolate) {
      this.#isolates.drop(live, outcome);
    }
    return failed(outcome, culprit, detail);
  }
}
