import { runLogBatch, type LogItem, type PipelineContext } from '../pdk-bridge/host/phase-call.ts';
import type { RuntimeRoute } from './route.ts';

const LOG_BATCH_MAX = 256;

type Entry = { route: RuntimeRoute; item: LogItem };

/**
 * The log phase, off the request path: finished requests are queued and run after the
 * responses are sent, one sandbox call per tenant per batch of up to LOG_BATCH_MAX.
 */
export class LogQueue {
  readonly #ctx: PipelineContext;
  #queue = new Map<RuntimeRoute['sandbox'], Entry[]>();
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
    for (const entries of queue.values()) {
      for (let i = 0; i < entries.length; i += LOG_BATCH_MAX) {
        const part = entries.slice(i, i + LOG_BATCH_MAX);
        runLogBatch(ctx, part.map((e) => e.route), part.map((e) => e.item));
      }
    }
  };
}
