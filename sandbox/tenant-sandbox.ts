import ivm from 'isolated-vm';
import type { Fault, FaultOutcome } from './outcome.ts';
import { OUTPUT_CAPS } from './limits.ts';
import { decodeParsed, decodeResult, failed, type RunResult } from './run-result.ts';
import type { TenantProgram } from './program.ts';
import { InstanceGate } from './breaker.ts';
import { CpuBudget } from './budget.ts';
import { KILL_NONE, KILL_WALL, createWatchCells, type WatchCells, type Watchdog } from './watchdog.ts';
import { beacon } from './beacon.ts';
import { HEAP_CHECK_AFTER_MS, heapOverLimit } from './heap-check.ts';

export type { RunResult } from './run-result.ts';
import { createBlank, type WarmIsolates } from './blank.ts';
import { RetryLoad, loadPlugins, type Entry } from './isolate-load.ts';

export type SandboxEvents = {
  /** An isolate was created (cold start), with the time it took. */
  onIsolateCreated?(tenant: string, ms: number): void;
  onIsolateDisposed?(tenant: string, reason: string): void;
  /** The process must stop: V8 lost control of an isolate. */
  onCatastrophicError?(tenant: string, message: string): void;
  /** Where ready-made blank isolates come from (cold starts then only load plugins). */
  warm?: WarmIsolates;
};

type Live = Entry & {
  isolate: ivm.Isolate;
  context: ivm.Context;
};

/** Only the log batch passes a structure in; a phase call passes numbers and strings, which cross without a copy step. */
const COPY_ARGS = { arguments: { copy: true } } as const;
const CALL_SLACK_MS = 20;

/**
 * One tenant's isolate and everything loaded into it. The isolate is created on first use
 * and again after a fault that left it unusable. Calls are synchronous (`applySync`)
 * without a per-call timer: the process-wide Watchdog enforces the deadlines.
 *
 * @example
 *   const sb = new TenantSandbox(program, watchdog);
 *   const r = sb.run(0, PHASE.ACCESS, reqJson, '', '');
 */
export class TenantSandbox {
  readonly program: TenantProgram;
  readonly tenant: string;
  /** Breakers and quarantine of this tenant's instances. */
  readonly gate: InstanceGate;
  readonly budget: CpuBudget;
  /** This sandbox's number in the crash beacon (sandbox/beacon.ts). */
  readonly slot: number;
  #watchdog: Watchdog;
  #events: SandboxEvents;
  #cells: WatchCells = createWatchCells();
  #live: Live | null = null;
  /** Per chain and phase: the call deadline budget (sum of the chain's CPU limits). */
  #budgets: Map<number, number>[];
  #disposed = false;
  /**
   * Milliseconds the last call cost the tenant: the isolate's own CPU time for the call
   * (not inflated when the gateway's core is contended), or the call's wall time when the
   * isolate did not survive it. Charged to the tenant's CPU budget.
   */
  lastCallMs = 0;
  /** The live isolate's cpuTime after the previous call. */
  #cpuMark = 0n;
  /** Plugin index -> why its module could not load (kept for the sandbox's life). */
  #broken = new Map<number, Fault>();
  /** Call deadline for creating the isolate: every plugin's CPU limit, plus slack. */
  #loadBudgetMs: number;

  constructor(program: TenantProgram, watchdog: Watchdog, events: SandboxEvents = {}) {
    this.program = program;
    this.tenant = program.tenant;
    this.gate = new InstanceGate(program.instances.length, program.breaker);
    this.budget = new CpuBudget(program.cpuWeight, program.cpuMaxMs);
    this.slot = beacon.register(this.#cells.callDeadline.buffer as SharedArrayBuffer, this.#cells.pluginShared, watchdog.control);
    this.#watchdog = watchdog;
    this.#events = events;
    this.#loadBudgetMs = program.instances.reduce((sum, i) => sum + i.cpuMs, 0) + 10 * CALL_SLACK_MS;
    this.#budgets = program.chains.map((chain) => {
      const m = new Map<number, number>();
      for (const [bit, list] of Object.entries(chain)) {
        m.set(Number(bit), list.reduce((sum, i) => sum + program.instances[i].cpuMs, 0) + CALL_SLACK_MS);
      }
      return m;
    });
  }

  get isLive(): boolean {
    return this.#live !== null && !this.#live.isolate.isDisposed;
  }

  /** Creates the isolate now instead of on the first request (benchmarks, pre-warming). */
  warm(): void {
    this.#ensureRetrying();
  }

  /**
   * Creates the isolate and loads the tenant's plugins. Plugin code runs here (module
   * top-level code, export getters), so this runs under the watchdog like any call: each
   * plugin's module gets its instance's CPU limit, the whole load a call deadline, and the
   * crash beacon names the plugin if the process dies or wedges meanwhile.
   */
  #ensure(): Live {
    // #live is cleared whenever its isolate is disposed (#drop): no native isDisposed
    // check per call (it costs more than the rest of this function).
    const live = this.#live;
    if (live !== null) {
      // The watchdog may judge a deadline passed just as a call returns, and dispose the
      // isolate after the host looked: its kill flag, set before it disposes, says so.
      if (this.#cells.killed[0] === KILL_NONE) return live;
      this.#drop(live, 'cpu');
    }
    if (this.#disposed) throw new Error(`sandbox of tenant ${this.tenant} was disposed`);
    const t0 = performance.now();
    const tenant = this.tenant;
    const events = this.#events;
    const cells = this.#cells;
    const program = this.program;
    const blank = events.warm?.take(program.memoryMb) ?? createBlank(program.memoryMb);
    blank.onCatastrophicError = (message) => events.onCatastrophicError?.(tenant, message);
    const { isolate, context } = blank;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.pluginDeadline[0] = 0;
    this.#watchdog.watch(this.slot, isolate, cells);
    cells.callDeadline[0] = this.#loadBudgetMs;
    beacon.enter(this.slot);
    try {
      const entry = loadPlugins(blank, program, cells, this.#broken, (err) => this.#loadFailed(err).faults[0]);
      const next: Live = { isolate, context, ...entry };
      this.#live = next;
      this.#cpuMark = 0n; // a new isolate: its module loading is charged with its first call
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
   * One guarded call into the live isolate: the call deadline armed for `budgetMs`, the
   * watchdog and the crash beacon told, then the result of a chain that awaited fetched
   * (it exists only after the isolate ran its microtasks), and the call's CPU charged.
   * A call the isolate did not survive comes back as Crashed.
   */
  #call(live: Live, budgetMs: number, fn: ivm.Reference<(...args: unknown[]) => string | undefined>, args: unknown[], options?: typeof COPY_ARGS): unknown {
    const cells = this.#cells;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.callDeadline[0] = budgetMs;
    const started = performance.now();
    beacon.enter(this.slot);
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
      this.lastCallMs = performance.now() - started;
      return new Crashed(this.#crashed(error));
    }
    this.#chargeCpu(live, started);
    if (this.lastCallMs >= HEAP_CHECK_AFTER_MS && heapOverLimit(live.isolate, this.program.memoryMb)) {
      this.#drop(live, 'memory');
      return new Crashed(failed('memory', cells.current[0], 'isolate heap limit exceeded during the call'));
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
      this.lastCallMs = performance.now() - started;
      return;
    }
    this.lastCallMs = Number(now - this.#cpuMark) / 1e6;
    this.#cpuMark = now;
  }

  /** When the isolate pool was last told of a use (the pool needs it about once a second, not per call). */
  touchedAt = -Infinity;

  /** Runs #ensure, once more if a plugin's module took the first isolate down with it. */
  #ensureRetrying(): Live {
    try {
      return this.#ensure();
    } catch (err) {
      if (err instanceof RetryLoad) return this.#ensure();
      throw err;
    }
  }

  /**
   * Plugins whose module failed to load: the instances of the chain that use one fail the
   * call (or are skipped when fail-open) without entering the isolate. Null when none.
   */
  #brokenInChain(chainId: number, phase: number, skip: readonly number[] | undefined): { fault: RunResult | null; skip: readonly number[] | undefined } {
    let out = skip;
    for (const idx of this.program.chains[chainId][phase] ?? []) {
      const inst = this.program.instances[idx];
      const broken = this.#broken.get(inst.plugin);
      if (broken === undefined) continue;
      if (!inst.failOpen) return { fault: failed(broken.outcome, idx, broken.detail), skip };
      if (out === undefined || !out.includes(idx)) out = [...(out ?? []), idx];
    }
    return { fault: null, skip: out };
  }

  /**
   * A load that failed: the plugin whose code was running is named, as for a call. `err`
   * is isolated-vm's or ours, never a value plugin code made (the runtime catches those).
   */
  #loadFailed(err: unknown): RunResult {
    const cells = this.#cells;
    const culprit = cells.current[0];
    if (cells.killed[0] !== KILL_NONE) return failed('cpu', culprit, 'stopped by the watchdog while its module loaded');
    const message = err instanceof Error ? String(err.message) : 'unknown error';
    if (/memory limit/i.test(message)) return failed('memory', culprit, 'isolate heap limit reached while its module loaded');
    return failed('threw', culprit, `plugin module failed to load: ${message.slice(0, 300)}`);
  }

  /**
   * Runs one phase of chain `chainId`. Never throws for plugin faults: they come back as
   * `faults`. `skip` lists instances to leave out (fail-open instances that faulted).
   */
  run(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skipIn?: readonly number[], body = ''): RunResult {
    try {
      return this.#run(chainId, phase, reqJson, phaseJson, ctxJson, skipIn, body);
    } catch (err) {
      return this.#internal(err);
    }
  }

  /** Runs many log-phase items in one call; returns one result per item (or one shared fault). */
  runBatch(items: readonly (readonly [number, string, string, string])[]): RunResult[] {
    try {
      return this.#runBatch(items);
    } catch (err) {
      const r = this.#internal(err);
      return items.map(() => r);
    }
  }

  /**
   * A bug of ours in a sandbox call: never an exception out of the call (the request would
   * end as ISG_ERR_INTERNAL), but a fault with no instance named, and a new isolate, since
   * nothing is known of the state this one was left in.
   */
  #internal(err: unknown): RunResult {
    const live = this.#live;
    if (live !== null) {
      try {
        this.#drop(live, 'internal');
      } catch {
        this.#live = null;
      }
    }
    return failed('threw', -1, `sandbox internal error: ${String((err as Error)?.message).slice(0, 300)}`);
  }

  #run(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skipIn?: readonly number[], body = ''): RunResult {
    let skip = skipIn;
    const began = performance.now();
    this.lastCallMs = 0;
    let live: Live;
    try {
      live = this.#ensureRetrying();
    } catch (err) {
      this.lastCallMs = performance.now() - began;
      return this.#loadFailed(err);
    }
    if (this.#broken.size > 0) {
      const b = this.#brokenInChain(chainId, phase, skip);
      if (b.fault !== null) return b.fault;
      skip = b.skip;
    }
    const out = this.#call(live, this.#budgets[chainId].get(phase) ?? CALL_SLACK_MS, live.run,
      [chainId, phase, reqJson, phaseJson, ctxJson, skip === undefined ? '' : skip.join(','), body]);
    if (out instanceof Crashed) return out.result;
    const r = decodeResult(out, this.#cells.current[0], this.program.instances.length);
    // A call left pending holds continuations that would run inside a later request: drop
    // the isolate rather than let one request's code act on another's.
    if (r.aborted && r.faults[0]?.outcome === 'wall') this.#drop(live, 'wall');
    return r;
  }

  #runBatch(items: readonly (readonly [number, string, string, string])[]): RunResult[] {
    const began = performance.now();
    this.lastCallMs = 0;
    let live: Live;
    try {
      live = this.#ensureRetrying();
    } catch (err) {
      this.lastCallMs = performance.now() - began;
      const r = this.#loadFailed(err);
      return items.map(() => r);
    }
    if (this.#broken.size > 0) {
      // The log phase has no skip list: items of a chain with a broken plugin get its fault,
      // the others run.
      const verdicts = items.map((it) => this.#brokenInChain(it[0], 32, undefined).fault);
      if (verdicts.some((v) => v !== null)) {
        const runnable = items.filter((_it, k) => verdicts[k] === null);
        const ran = runnable.length > 0 ? this.#runBatch(runnable) : [];
        let next = 0;
        return verdicts.map((v) => v ?? ran[next++]);
      }
    }
    const cells = this.#cells;
    let budget = 0;
    for (const it of items) budget += this.#budgets[it[0]].get(32) ?? 0;
    const s = this.#call(live, budget + CALL_SLACK_MS, live.runBatch, [items], COPY_ARGS);
    if (s instanceof Crashed) return items.map(() => s.result);
    if (typeof s !== 'string') return items.map(() => failed(s === undefined ? 'wall' : 'bad_return', cells.current[0], 'log batch did not settle'));
    if (s.length > OUTPUT_CAPS.maxResultBytes * 4) return items.map(() => failed('too_large', cells.current[0], 'log batch result too large'));
    let parts: unknown;
    try {
      parts = JSON.parse(s);
    } catch {
      return items.map(() => failed('bad_return', cells.current[0], 'log batch result is not JSON'));
    }
    if (!Array.isArray(parts) || parts.length !== items.length) return items.map(() => failed('bad_return', -1, 'log batch result has the wrong shape'));
    return parts.map((p) => decodeParsed(p, cells.current[0], this.program.instances.length, ''));
  }

  #crashed(err: unknown): RunResult {
    const cells = this.#cells;
    const culprit = cells.current[0];
    const live = this.#live;
    const message = err instanceof Error ? String(err.message) : 'unknown error';
    let outcome: FaultOutcome;
    let detail: string;
    if (cells.killed[0] !== KILL_NONE) {
      outcome = 'cpu';
      detail = cells.killed[0] === KILL_WALL ? 'stopped by the watchdog: the call ran 1 s of wall time past its CPU budget' : 'stopped by the watchdog after its CPU limit';
    } else if (/memory limit/i.test(message)) {
      outcome = 'memory';
      detail = 'isolate heap limit reached';
    } else if (live !== null && live.isolate.isDisposed) {
      outcome = 'memory';
      detail = 'isolate was disposed during execution';
    } else {
      outcome = 'threw';
      detail = 'runtime error: ' + message.slice(0, 200);
    }
    if (live !== null && (live.isolate.isDisposed || outcome === 'cpu' || outcome === 'memory')) {
      this.#drop(live, outcome);
    }
    return failed(outcome, culprit, detail);
  }

  #drop(live: Live, reason: string): void {
    if (this.#live === live) this.#live = null;
    this.touchedAt = -Infinity; // the next isolate registers with the pool on its first call
    try {
      if (!live.isolate.isDisposed) live.isolate.dispose();
    } catch {
      // the watchdog disposed it between the check and the call
    }
    this.#events.onIsolateDisposed?.(this.tenant, reason);
  }

  /** Heap statistics of the live isolate, or null when none exists. */
  heap(): { used: number; total: number; external: number } | null {
    const live = this.#live;
    if (live === null || live.isolate.isDisposed) return null;
    const h = live.isolate.getHeapStatisticsSync();
    return { used: h.used_heap_size, total: h.total_heap_size, external: h.externally_allocated_size };
  }

  /** Frees the isolate; the sandbox creates a new one on its next call (used by pool eviction). */
  release(reason = 'evicted'): void {
    const live = this.#live;
    if (live !== null) this.#drop(live, reason);
  }

  /** Frees the isolate for good. */
  dispose(): void {
    this.release('disposed');
    this.#disposed = true;
    beacon.unregister(this.slot);
  }
}

/** A call the isolate did not survive, and the fault it ends as. */
class Crashed {
  readonly result: RunResult;
  constructor(result: RunResult) {
    this.result = result;
  }
}

const KILLED_AS_IT_RETURNED = new Error('stopped by the watchdog as the call returned');

