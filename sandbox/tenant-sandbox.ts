import ivm from 'isolated-vm';
import type { Fault, FaultOutcome } from './outcome.ts';
import { OUTPUT_CAPS } from './limits.ts';
import type { TenantProgram } from './program.ts';
import { InstanceGate } from './breaker.ts';
import { CpuBudget } from './budget.ts';
import { KILL_NONE, createWatchCells, type WatchCells, type Watchdog } from './watchdog.ts';
import { beacon } from './beacon.ts';
import { createBlank, type WarmIsolates } from './blank.ts';
import { HEAP_CHECK_AFTER_MS, heapOverLimit } from './heap-check.ts';

/** Result of one phase run, before its operations are validated and applied. */
export type RunResult = {
  /** Operations as the runtime encoded them: untrusted, validated by pdk-bridge/host. */
  readonly ops: readonly unknown[];
  readonly faults: readonly Fault[];
  /** pdk.ctx.shared as JSON, '' when empty. */
  readonly ctx: string;
  /** bodyFilter: the body set by response.setBody, or null. */
  readonly body: string | null;
  /**
   * True when the call produced nothing usable (the isolate was stopped, or the result was
   * rejected): the faults say why, and no operation of any plugin of the chain survives.
   * False when faults come from the runtime, which went on past fail-open plugins.
   */
  readonly aborted: boolean;
};

export type SandboxEvents = {
  /** An isolate was created (cold start), with the time it took. */
  onIsolateCreated?(tenant: string, ms: number): void;
  onIsolateDisposed?(tenant: string, reason: string): void;
  /** The process must stop: V8 lost control of an isolate. */
  onCatastrophicError?(tenant: string, message: string): void;
  /** Where ready-made blank isolates come from (cold starts then only load plugins). */
  warm?: WarmIsolates;
};

type Live = {
  isolate: ivm.Isolate;
  context: ivm.Context;
  /** Its id in the watchdog. */
  watchId: number;
  run: ivm.Reference<(...args: unknown[]) => string | undefined>;
  collect: ivm.Reference<() => string | undefined>;
  runBatch: ivm.Reference<(...args: unknown[]) => string | undefined>;
};

/** Only the log batch passes a structure in; a phase call passes numbers and strings, which cross without a copy step. */
const COPY_ARGS = { arguments: { copy: true } } as const;
const FAULT_REASONS_FROM_RUNTIME = new Set<FaultOutcome>(['threw', 'bad_return']);
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
    this.slot = beacon.register(this.#cells.pluginShared);
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
    if (live !== null) return live;
    if (this.#disposed) throw new Error(`sandbox of tenant ${this.tenant} was disposed`);
    const t0 = performance.now();
    const tenant = this.tenant;
    const events = this.#events;
    const cells = this.#cells;
    const program = this.program;
    const blank = events.warm?.take(program.memoryMb) ?? createBlank(program.memoryMb);
    blank.onCatastrophicError = (message) => events.onCatastrophicError?.(tenant, message);
    const { isolate, context, api } = blank;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.pluginDeadline[0] = 0;
    const watchId = this.#watchdog.watch(isolate, cells);
    cells.callDeadline[0] = Date.now() + this.#loadBudgetMs;
    this.#watchdog.enter(watchId);
    beacon.enter(this.slot);
    try {
      const attach = api.getSync('attach', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
      attach.applySync(undefined, [new ivm.ExternalCopy(cells.pluginShared).copyInto({ release: true })]);
      attach.release();
      const load = api.getSync('load', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
      program.plugins.forEach((plugin, index) => {
        if (this.#broken.has(index)) return;
        const owner = program.instances.findIndex((i) => i.plugin === index);
        cells.current[0] = owner;
        cells.pluginDeadline[0] = Date.now() + (owner >= 0 ? program.instances[owner].cpuMs : CALL_SLACK_MS);
        try {
          const exports = isolate.compileScriptSync(plugin.code, { filename: `plugin:${plugin.name}` })
            .runSync(context, { reference: true }) as ivm.Reference<unknown>;
          cells.pluginDeadline[0] = 0;
          load.applySync(undefined, [index, exports.derefInto()]);
          exports.release();
        } catch (err) {
          // This plugin cannot load: the tenant's other plugins still can. Remember it, and
          // start over without it if the isolate did not survive.
          cells.pluginDeadline[0] = 0;
          this.#broken.set(index, this.#loadFailed(err).faults[0]);
          if (isolate.isDisposed) throw new RetryLoad();
        }
      });
      const setup = api.getSync('setup', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
      setup.applySync(undefined, [JSON.stringify({
        instances: program.instances.map((i) => ({ plugin: i.plugin, config: i.config, cpuMs: i.cpuMs, failOpen: i.failOpen })),
        chains: program.chains,
      })]);
      const next: Live = {
        isolate,
        context,
        watchId,
        run: api.getSync('run', { reference: true }) as Live['run'],
        collect: api.getSync('collect', { reference: true }) as Live['collect'],
        runBatch: api.getSync('runBatch', { reference: true }) as Live['runBatch'],
      };
      load.release();
      setup.release();
      api.release();
      this.#live = next;
      this.#cpuMark = 0n; // a new isolate: its module loading is charged with its first call
      events.onIsolateCreated?.(tenant, performance.now() - t0);
      return next;
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    } finally {
      cells.callDeadline[0] = 0;
      this.#watchdog.leave();
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
    cells.callDeadline[0] = Date.now() + budgetMs;
    const started = performance.now();
    this.#watchdog.enter(live.watchId);
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
    this.#watchdog.leave();
    beacon.leave();
    if (error !== null) {
      this.lastCallMs = performance.now() - started;
      return new Crashed(this.#crashed(error));
    }
    this.#chargeCpu(live);
    if (this.lastCallMs >= HEAP_CHECK_AFTER_MS && heapOverLimit(live.isolate, this.program.memoryMb)) {
      this.#drop(live, 'memory');
      return new Crashed(failed('memory', cells.current[0], 'isolate heap limit exceeded during the call'));
    }
    return out;
  }

  #chargeCpu(live: Live): void {
    const now = live.isolate.cpuTime;
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

  /** A load that failed: the plugin whose code was running is named, as for a call. */
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
    const r = this.#decode(out);
    // A call left pending holds continuations that would run inside a later request: drop
    // the isolate rather than let one request's code act on another's.
    if (r.aborted && r.faults[0]?.outcome === 'wall') this.#drop(live, 'wall');
    return r;
  }

  /** Runs many log-phase items in one call; returns one result per item (or one shared fault). */
  runBatch(items: readonly (readonly [number, string, string, string])[]): RunResult[] {
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
        const ran = runnable.length > 0 ? this.runBatch(runnable) : [];
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
    return parts.map((p) => this.#decodeParsed(p, ''));
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
      detail = 'stopped by the watchdog after its CPU limit';
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
    if (!live.isolate.isDisposed) live.isolate.dispose();
    this.#events.onIsolateDisposed?.(this.tenant, reason);
  }

  /** Decodes a phase result: `[ops, faults]` JSON, a newline, the ctx JSON. */
  #decode(out: unknown): RunResult {
    const current = this.#cells.current[0];
    if (typeof out !== 'string') {
      if (out === undefined) return failed('wall', current, 'a promise of the handler never settled');
      return failed('bad_return', current, 'result is not a string');
    }
    const nl = out.indexOf('\n');
    const nl2 = nl < 0 ? -1 : out.indexOf('\n', nl + 1);
    const json = nl < 0 ? out : out.slice(0, nl);
    if (json.length > OUTPUT_CAPS.maxResultBytes) return failed('too_large', current, `result of ${json.length} bytes exceeds ${OUTPUT_CAPS.maxResultBytes}`);
    const body = nl2 < 0 ? null : out.slice(nl2 + 1);
    if (body !== null && body.length > OUTPUT_CAPS.maxBodyBytes) return failed('too_large', current, `body of ${body.length} bytes exceeds ${OUTPUT_CAPS.maxBodyBytes}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      return failed('bad_return', current, 'result is not JSON');
    }
    const r = this.#decodeParsed(parsed, nl < 0 ? '' : nl2 < 0 ? out.slice(nl + 1) : out.slice(nl + 1, nl2));
    return body === null || r.aborted ? r : { ...r, body };
  }

  #decodeParsed(parsed: unknown, ctx: unknown): RunResult {
    if (!Array.isArray(parsed) || parsed.length < 2 || !Array.isArray(parsed[0]) || !Array.isArray(parsed[1])) {
      return failed('bad_return', this.#cells.current[0], 'result has the wrong shape');
    }
    const ops = parsed[0] as unknown[];
    if (ops.length > OUTPUT_CAPS.maxOps) return failed('too_large', this.#cells.current[0], `${ops.length} operations exceed ${OUTPUT_CAPS.maxOps}`);
    const faults: Fault[] = [];
    const count = this.program.instances.length;
    for (const f of parsed[1] as unknown[]) {
      if (!Array.isArray(f) || typeof f[0] !== 'number' || !Number.isInteger(f[0]) || f[0] < -1 || f[0] >= count) {
        return failed('bad_return', -1, 'fault entry has the wrong shape');
      }
      const reason = FAULT_REASONS_FROM_RUNTIME.has(f[1]) ? (f[1] as FaultOutcome) : 'bad_return';
      faults.push({ outcome: reason, instance: f[0], detail: typeof f[2] === 'string' ? f[2].slice(0, 1024) : '' });
    }
    let ctxJson = '';
    if (typeof ctx === 'string') {
      if (ctx.length > OUTPUT_CAPS.maxCtxBytes) return failed('too_large', this.#cells.current[0], `pdk.ctx.shared of ${ctx.length} bytes exceeds ${OUTPUT_CAPS.maxCtxBytes}`);
      ctxJson = ctx;
    }
    return { ops, faults, ctx: ctxJson, aborted: false, body: null };
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
  }
}

/** A call the isolate did not survive, and the fault it ends as. */
class Crashed {
  readonly result: RunResult;
  constructor(result: RunResult) {
    this.result = result;
  }
}

/** Thrown inside #ensure when a plugin's module disposed the isolate: load again without it. */
class RetryLoad extends Error {}

function failed(outcome: FaultOutcome, instance: number, detail: string): RunResult {
  return { ops: [], faults: [{ outcome, instance, detail }], ctx: '', aborted: true, body: null };
}
