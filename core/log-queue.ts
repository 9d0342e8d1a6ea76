import { LOG_ONLY_TARGET, applyOps } from '../pdk-bridge/host/ops.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { Suspended, type RunResult, type TenantSandbox } from '../sandbox/tenant-sandbox.ts';
import { performDetached, settleChain } from '../pdk-bridge/host/wait.ts';
import { recordFault, type PipelineContext } from './pipeline.ts';
import type { RuntimeRoute } from './route.ts';

const LOG_BATCH_MAX = 256;

type Entry = { route: RuntimeRoute; item: [number, string, string, string] };

/**
 * The log phase, off the request path: finished requests are queued and run after the
 * responses are sent, one sandbox call per tenant per batch of up to LOG_BATCH_MAX.
 */
export class LogQueue {
  readonly #ctx: PipelineContext;
  #queue = new Map<TenantSandbox, Entry[]>();
  #scheduled = false;
  #stopped = false;

  constructor(ctx: PipelineContext) {
    this.#ctx = ctx;
  }

  /** Queues the log phase of a finished request (bound: handed to the proxy as is). */
  readonly push = (route: RuntimeRoute, reqJson: string, phaseJson: string, ctx: string, chainId = route.chainId): void => {
    if (this.#stopped) return;
    const sb = route.sandbox!;
    let list = this.#queue.get(sb);
    if (list === undefined) this.#queue.set(sb, (list = []));
    list.push({ route, item: [chainId, reqJson, phaseJson, ctx] });
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.flush);
    }
  };

  /** True while a flush is scheduled, i.e. something may be queued. */
  get scheduled(): boolean {
    return this.#scheduled;
  }

  /** From now on, finished requests queue nothing (the gateway stops; flush() still runs what is queued). */
  stop(): void {
    this.#stopped = true;
  }

  /** Runs everything queued now. */
  readonly flush = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = new Map();
    const ctx = this.#ctx;
    for (const [sb, entries] of queue) {
      for (let i = 0; i < entries.length; i += LOG_BATCH_MAX) {
        const part = entries.slice(i, i + LOG_BATCH_MAX);
        sb.touchedAt = performance.now();
        ctx.pool.touch(sb);
        const results = sb.runBatch(part.map((e) => e.item));
        sb.budget.charge(sb.lastCallMs);
        results.forEach((r, k) => {
          const route = part[k].route;
          if (!(r instanceof Suspended)) {
            this.#apply(route, r);
            return;
          }
          // This item waits on async PDK calls: it ends later, on its own.
          settleChain(sb, r, ctx.services, this.#charge(sb), route.consumers).then(
            (done) => this.#apply(route, done),
            (err) => ctx.log.error({ tenant: route.tenant, err: String((err as Error)?.message) }, 'async log phase failed'),
          );
        });
      }
    }
  };

  #charge(sb: TenantSandbox): (t0: number) => void {
    return () => sb.budget.charge(sb.lastCallMs);
  }

  #apply(route: RuntimeRoute, r: RunResult): void {
    const ctx = this.#ctx;
    if (r.detached !== undefined) performDetached(route.sandbox!, r.detached, PHASE.LOG, ctx.services, route.consumers);
    for (const f of r.faults) recordFault(ctx, route, PHASE.LOG, f, route.instances[f.instance]?.failOpen === true);
    const bad = applyOps(r.ops, PHASE.LOG, LOG_ONLY_TARGET, route.logSinks.get(PHASE.LOG)!);
    if (bad !== null) recordFault(ctx, route, PHASE.LOG, { outcome: 'bad_return', instance: bad.instance, detail: bad.detail }, false);
  }
}
