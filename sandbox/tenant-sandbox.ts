import { PHASE } from '../pdk-bridge/phases.ts';
import { decodeResult, failed, type RunResult } from './run-result.ts';
import type { TenantProgram } from './program.ts';
import { InstanceGate } from './breaker.ts';
import { CpuBudget } from './budget.ts';
import { createWatchCells, type WatchCells, type Watchdog } from './watchdog.ts';
import { beacon } from './beacon.ts';
import { CALL_SLACK_MS, IsolateLifecycle, type Live, type SandboxEvents } from './isolate-lifecycle.ts';
import { COPY_ARGS, Crashed, GuardedCall } from './guarded-call.ts';
import { Suspended } from './suspended.ts';
import { decodeAsync, decodeBatch } from './async-result.ts';
import { OUTCOME } from './outcome.ts';

export type { RunResult } from './run-result.ts';
export type { SandboxEvents } from './isolate-lifecycle.ts';
export { Suspended } from './suspended.ts';

/** '[' opens every finished result; anything else is a chain with async calls (see #async). */
const RESULT_OPEN = 91;

/**
 * One tenant's isolate and everything loaded into it, as its users see it: run a phase of
 * a chain, run a log batch, and the tenant's gate and CPU budget. The isolate's lifecycle
 * (created on first use and again after a fault that left it unusable) is
 * sandbox/isolate-lifecycle.ts; the guarded call into it, under the process-wide Watchdog
 * without a per-call timer, is sandbox/guarded-call.ts.
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
  /**
   * Milliseconds the last call cost the tenant: the isolate's own CPU time for the call
   * (not inflated when the gateway's core is contended), or the call's wall time when the
   * isolate did not survive it. Charged to the tenant's CPU budget.
   */
  lastCallMs = 0;
  /** When the isolate pool was last told of a use (the pool needs it about once a second, not per call). */
  touchedAt = -Infinity;
  #cells: WatchCells = createWatchCells();
  #isolates: IsolateLifecycle;
  #guard: GuardedCall;
  /** Per chain and phase: the call deadline budget (sum of the chain's CPU limits). */
  #budgets: Map<number, number>[];

  constructor(program: TenantProgram, watchdog: Watchdog, events: SandboxEvents = {}) {
    this.program = program;
    this.tenant = program.tenant;
    this.gate = new InstanceGate(program.instances.length, program.breaker);
    this.budget = new CpuBudget(program.cpuWeight, program.cpuMaxMs);
    this.slot = beacon.register(this.#cells.callDeadline.buffer as SharedArrayBuffer, this.#cells.pluginShared, watchdog.control);
    this.#isolates = new IsolateLifecycle(program, watchdog, events, this.#cells, this.slot, this);
    this.#guard = new GuardedCall(this.#cells, this.slot, this.#isolates, program.memoryMb, this);
    this.#budgets = program.chains.map((chain, id) => {
      // A chain of a consumer family may switch to a sibling mid-phase: budget for every instance the family could run.
      const f = program.chainFamily?.[id];
      const family = f === undefined ? [chain] : [program.families[f].base, ...Object.values(program.families[f].consumers).flatMap((byPhase) => Object.values(byPhase).flatMap((sw) => sw.chains))].map((c) => program.chains[c]);
      const m = new Map<number, number>();
      for (const bit of new Set(family.flatMap((c) => Object.keys(c)))) {
        const all = new Set(family.flatMap((c) => c[Number(bit)] ?? []));
        m.set(Number(bit), [...all].reduce((sum, i) => sum + program.instances[i].cpuMs, 0) + CALL_SLACK_MS);
      }
      return m;
    });
  }

  get isLive(): boolean {
    return this.#isolates.isLive;
  }

  /** Creates the isolate now instead of on the first request (benchmarks, pre-warming). */
  warm(): void {
    this.#isolates.ensureRetrying();
  }

  /**
   * Plugins whose module failed to load: the instances of the chain that use one fail the
   * call (or are skipped when fail-open) without entering the isolate. Null when none.
   */
  #brokenInChain(chainId: number, phase: number, skip: readonly number[] | undefined): { fault: RunResult | null; skip: readonly number[] | undefined } {
    let out = skip;
    const brokenModules = this.#isolates.broken;
    for (const idx of this.program.chains[chainId][phase] ?? []) {
      const inst = this.program.instances[idx];
      const broken = brokenModules.get(inst.plugin);
      if (broken === undefined) continue;
      if (!inst.failOpen) return { fault: failed(broken.outcome, idx, broken.detail), skip };
      if (out === undefined || !out.includes(idx)) out = [...(out ?? []), idx];
    }
    return { fault: null, skip: out };
  }

  /**
   * Runs one phase of chain `chainId`. Never throws for plugin faults: they come back as
   * `faults`. `skip` lists instances to leave out (fail-open instances that faulted).
   * A chain waiting on async PDK calls comes back Suspended: perform its requests, then
   * call resume.
   */
  run(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skipIn?: readonly number[], body: string | null = '', last = false): RunResult | Suspended {
    try {
      return this.#run(chainId, phase, reqJson, phaseJson, ctxJson, skipIn, body, last);
    } catch (err) {
      return this.#internal(err);
    }
  }

  /**
   * Resumes a suspended chain with the answers to its requests (JSON of Answer[]); returns
   * as run does. A chain whose isolate was replaced meanwhile is lost: a fault naming no
   * instance (nothing of the plugins is to blame).
   */
  resume(s: Suspended, answersJson: string): RunResult | Suspended {
    try {
      this.lastCallMs = 0;
      const live = this.#isolates.current;
      if (live === null || live !== s.isolate || live.isolate.isDisposed) {
        return failed('threw', -1, 'the isolate this chain waited in was replaced meanwhile (another request of the tenant faulted, or it was evicted): the chain is lost');
      }
      const budget = this.#budgets[s.chainId].get(s.phase) ?? CALL_SLACK_MS;
      return this.#finish(this.#guard.call(live, budget, live.resume, [s.frame, answersJson]), live, s.chainId, s.phase);
    } catch (err) {
      return this.#internal(err);
    }
  }

  /** Runs many log-phase items in one call; returns one result per item (or one shared fault). */
  runBatch(items: readonly (readonly [number, string, string, string])[]): (RunResult | Suspended)[] {
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
    this.#isolates.discard('internal');
    return failed('threw', -1, `sandbox internal error: ${String((err as Error)?.message).slice(0, 300)}`);
  }

  #run(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skipIn: readonly number[] | undefined, body: string | null, last: boolean): RunResult | Suspended {
    let skip = skipIn;
    const began = performance.now();
    this.lastCallMs = 0;
    let live: Live;
    try {
      live = this.#isolates.ensureRetrying();
    } catch (err) {
      this.lastCallMs = performance.now() - began;
      return this.#isolates.loadFailed(err);
    }
    if (this.#isolates.broken.size > 0) {
      const b = this.#brokenInChain(chainId, phase, skip);
      if (b.fault !== null) return b.fault;
      skip = b.skip;
    }
    const out = this.#guard.call(live, this.#budgets[chainId].get(phase) ?? CALL_SLACK_MS, live.run,
      [chainId, phase, reqJson, phaseJson, ctxJson, skip === undefined ? '' : skip.join(','), body, last]);
    return this.#finish(out, live, chainId, phase);
  }

  #finish(out: unknown, live: Live, chainId: number, phase: number): RunResult | Suspended {
    if (out instanceof Crashed) return out.result;
    if (typeof out === 'string' && out.charCodeAt(0) !== RESULT_OPEN) return decodeAsync(out, live, chainId, phase, this.#cells.current[0], this.program.instances.length) as RunResult | Suspended;
    const r = decodeResult(out, this.#cells.current[0], this.program.instances.length);
    // A call left pending holds continuations that would run inside a later request: drop
    // the isolate rather than let one request's code act on another's.
    const first = r.faults[0];
    if (r.aborted && first !== undefined && OUTCOME[first.outcome].dropsIsolate) this.#isolates.drop(live, first.outcome);
    return r;
  }

  #runBatch(items: readonly (readonly [number, string, string, string])[]): (RunResult | Suspended)[] {
    const began = performance.now();
    this.lastCallMs = 0;
    let live: Live;
    try {
      live = this.#isolates.ensureRetrying();
    } catch (err) {
      this.lastCallMs = performance.now() - began;
      const r = this.#isolates.loadFailed(err);
      return items.map(() => r);
    }
    if (this.#isolates.broken.size > 0) {
      // The log phase has no skip list: items of a chain with a broken plugin get its fault,
      // the others run.
      const verdicts = items.map((it) => this.#brokenInChain(it[0], PHASE.LOG, undefined).fault);
      if (verdicts.some((v) => v !== null)) {
        const runnable = items.filter((_it, k) => verdicts[k] === null);
        const ran = runnable.length > 0 ? this.#runBatch(runnable) : [];
        let next = 0;
        return verdicts.map((v) => v ?? ran[next++]);
      }
    }
    const cells = this.#cells;
    let budget = 0;
    for (const it of items) budget += this.#budgets[it[0]].get(PHASE.LOG) ?? 0;
    const s = this.#guard.call(live, budget + CALL_SLACK_MS, live.runBatch, [items], COPY_ARGS);
    if (s instanceof Crashed) return items.map(() => s.result);
    if (typeof s !== 'string') return items.map(() => failed(s === undefined ? 'wall' : 'bad_return', cells.current[0], 'log batch did not settle'));
    if (s.charCodeAt(0) === RESULT_OPEN) return decodeBatch(s, items.length, cells.current[0], this.program.instances.length);
    const r = decodeAsync(s, live, -1, PHASE.LOG, cells.current[0], this.program.instances.length, items.length);
    if (Array.isArray(r)) return r;
    if (!(r instanceof Suspended)) return items.map(() => r);
    // Item `index` waits on async calls: it goes on alone (resume), the items after it in a batch of their own.
    const b = r.batch!;
    const waiting = new Suspended(r.frame, r.requests, live, items[b.index][0], PHASE.LOG, null);
    const rest = b.index + 1 < items.length ? this.#runBatch(items.slice(b.index + 1)) : [];
    return [...b.results, waiting, ...rest];
  }

  /** Heap statistics of the live isolate, or null when none exists. */
  heap(): { used: number; total: number; external: number } | null {
    return this.#isolates.heap();
  }

  /** Frees the isolate; the sandbox creates a new one on its next call (used by pool eviction). */
  release(reason = 'evicted'): void {
    this.#isolates.release(reason);
  }

  /** Frees the isolate for good. */
  dispose(): void {
    this.#isolates.dispose();
    beacon.unregister(this.slot);
  }
}
