import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import type { Fault, FaultOutcome } from './outcome.ts';
import { OUTPUT_CAPS } from './limits.ts';
import type { TenantProgram } from './program.ts';
import { InstanceGate } from './breaker.ts';
import { CpuBudget } from './budget.ts';
import { KILL_NONE, createWatchCells, type WatchCells, type Watchdog } from './watchdog.ts';
import { beacon } from './beacon.ts';

const RUNTIME_DIR = join(import.meta.dirname, '..', 'pdk-bridge', 'runtime');

/** The in-isolate runtime: every file of pdk-bridge/runtime, in name order, as one function body. */
const RUNTIME_SOURCE = `(function ($shared) {\n${readdirSync(RUNTIME_DIR)
  .filter((f) => f.endsWith('.js'))
  .sort()
  .map((f) => readFileSync(join(RUNTIME_DIR, f), 'utf8'))
  .join('\n')}\n})(__isg_shared)`;

/** Result of one phase run, before its operations are validated and applied. */
export type RunResult = {
  /** Operations as the runtime encoded them: untrusted, validated by pdk-bridge/host. */
  readonly ops: readonly unknown[];
  readonly faults: readonly Fault[];
  /** pdk.ctx.shared as JSON, '' when empty. */
  readonly ctx: string;
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
};

type Live = {
  isolate: ivm.Isolate;
  context: ivm.Context;
  run: ivm.Reference<(...args: unknown[]) => { s?: string; c?: string }>;
  runBatch: ivm.Reference<(...args: unknown[]) => { s?: string }>;
};

const COPY = { arguments: { copy: true }, result: { copy: true } } as const;
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

  constructor(program: TenantProgram, watchdog: Watchdog, events: SandboxEvents = {}) {
    this.program = program;
    this.tenant = program.tenant;
    this.gate = new InstanceGate(program.instances.length, program.breaker);
    this.budget = new CpuBudget(program.cpuBudgetMs);
    this.slot = beacon.register(this.#cells.pluginShared);
    this.#watchdog = watchdog;
    this.#events = events;
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

  /** Creates the isolate now instead of on the first request. */
  warm(): void {
    this.#ensure();
  }

  #ensure(): Live {
    const live = this.#live;
    if (live !== null && !live.isolate.isDisposed) return live;
    if (this.#disposed) throw new Error(`sandbox of tenant ${this.tenant} was disposed`);
    const t0 = performance.now();
    const tenant = this.tenant;
    this.#cells.current[0] = -1;
    const events = this.#events;
    const isolate = new ivm.Isolate({
      memoryLimit: this.program.memoryMb,
      onCatastrophicError: (message) => events.onCatastrophicError?.(tenant, message),
    });
    try {
      const context = isolate.createContextSync();
      const g = context.global;
      g.setSync('__isg_shared', new ivm.ExternalCopy(this.#cells.pluginShared).copyInto({ release: true }));
      const api = isolate.compileScriptSync(RUNTIME_SOURCE, { filename: 'isogate:runtime' })
        .runSync(context, { reference: true }) as ivm.Reference<Record<string, unknown>>;
      // Nothing of ours stays on the global object once the runtime has captured it.
      context.evalSync('delete globalThis.__isg_shared');
      const load = api.getSync('load', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
      this.program.plugins.forEach((plugin, index) => {
        const exports = isolate.compileScriptSync(plugin.code, { filename: `plugin:${plugin.name}` })
          .runSync(context, { reference: true, timeout: 1000 }) as ivm.Reference<unknown>;
        load.applySync(undefined, [index, exports.derefInto()]);
        exports.release();
      });
      const setup = api.getSync('setup', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
      setup.applySync(undefined, [JSON.stringify({
        instances: this.program.instances.map((i) => ({ plugin: i.plugin, config: i.config, cpuMs: i.cpuMs, failOpen: i.failOpen })),
        chains: this.program.chains,
      })]);
      const next: Live = {
        isolate,
        context,
        run: api.getSync('run', { reference: true }) as Live['run'],
        runBatch: api.getSync('runBatch', { reference: true }) as Live['runBatch'],
      };
      load.release();
      setup.release();
      api.release();
      this.#watchdog.watch(isolate, this.#cells);
      this.#live = next;
      events.onIsolateCreated?.(tenant, performance.now() - t0);
      return next;
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /**
   * Runs one phase of chain `chainId`. Never throws for plugin faults: they come back as
   * `faults`. `skip` lists instances to leave out (fail-open instances that faulted).
   */
  run(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skip?: readonly number[]): RunResult {
    let live: Live;
    try {
      live = this.#ensure();
    } catch (err) {
      return failed('threw', -1, `isolate could not be created: ${(err as Error).message}`);
    }
    const cells = this.#cells;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    cells.callDeadline[0] = Date.now() + (this.#budgets[chainId].get(phase) ?? CALL_SLACK_MS);
    let out: { s?: unknown; c?: unknown };
    beacon.enter(this.slot);
    try {
      out = live.run.applySync(undefined, skip === undefined ? [chainId, phase, reqJson, phaseJson, ctxJson] : [chainId, phase, reqJson, phaseJson, ctxJson, [...skip]], COPY);
    } catch (err) {
      cells.callDeadline[0] = 0;
      beacon.leave();
      return this.#crashed(err);
    }
    cells.callDeadline[0] = 0;
    beacon.leave();
    return this.#decode(out);
  }

  /** Runs many log-phase items in one call; returns one result per item (or one shared fault). */
  runBatch(items: readonly (readonly [number, string, string, string])[]): RunResult[] {
    let live: Live;
    try {
      live = this.#ensure();
    } catch (err) {
      return items.map(() => failed('threw', -1, `isolate could not be created: ${(err as Error).message}`));
    }
    const cells = this.#cells;
    cells.killed[0] = KILL_NONE;
    cells.current[0] = -1;
    let budget = 0;
    for (const it of items) budget += this.#budgets[it[0]].get(32) ?? 0;
    cells.callDeadline[0] = Date.now() + budget + CALL_SLACK_MS;
    let out: { s?: unknown };
    beacon.enter(this.slot);
    try {
      out = live.runBatch.applySync(undefined, [items], COPY);
    } catch (err) {
      cells.callDeadline[0] = 0;
      beacon.leave();
      const r = this.#crashed(err);
      return items.map(() => r);
    }
    cells.callDeadline[0] = 0;
    beacon.leave();
    const s = out?.s;
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
    if (!live.isolate.isDisposed) live.isolate.dispose();
    this.#events.onIsolateDisposed?.(this.tenant, reason);
  }

  #decode(out: { s?: unknown; c?: unknown }): RunResult {
    const s = out?.s;
    const current = this.#cells.current[0];
    if (typeof s !== 'string') {
      if (s === undefined) return failed('wall', current, 'a promise of the handler never settled');
      return failed('bad_return', current, 'result is not a string');
    }
    if (s.length > OUTPUT_CAPS.maxResultBytes) return failed('too_large', current, `result of ${s.length} bytes exceeds ${OUTPUT_CAPS.maxResultBytes}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(s);
    } catch {
      return failed('bad_return', current, 'result is not JSON');
    }
    return this.#decodeParsed(parsed, out.c);
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
    return { ops, faults, ctx: ctxJson, aborted: false };
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

function failed(outcome: FaultOutcome, instance: number, detail: string): RunResult {
  return { ops: [], faults: [{ outcome, instance, detail }], ctx: '', aborted: true };
}
