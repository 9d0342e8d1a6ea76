import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { promText } from '../metrics.ts';
import type { Quarantined } from './quarantine.ts';

/**
 * The supervisor's /metrics: the workers' metrics aggregated over IPC, then the
 * supervisor's own (restarts, reloads, ready workers, quarantined plugins).
 */
export class SupervisorMetrics {
  readonly #aggregator = new AggregatorRegistry();
  readonly #registry = new Registry();
  readonly restarts: Counter<'reason'>;
  readonly reloads: Counter<'result'>;

  /** `ready`: the workers ready to serve; `quarantined`: what is quarantined now. */
  constructor(ready: () => number, quarantined: () => Iterable<Quarantined>) {
    this.restarts = new Counter({ name: 'isogate_worker_restarts_total', help: 'Workers replaced, by reason (crash, wedged, memory).', labelNames: ['reason'], registers: [this.#registry] });
    this.reloads = new Counter({ name: 'isogate_config_reloads_total', help: 'Config reloads by result (ok, error), counted once for all workers: error if any worker rejected it.', labelNames: ['result'], registers: [this.#registry] });
    new Gauge({ name: 'isogate_workers', help: 'Worker processes ready to serve.', registers: [this.#registry], collect() { this.set(ready()); } });
    new Gauge({
      name: 'isogate_plugin_quarantined',
      help: 'Plugin instances quarantined after crashing a worker (1 each).',
      labelNames: ['tenant', 'instance'],
      registers: [this.#registry],
      collect() {
        this.reset();
        for (const q of quarantined()) this.labels(q.tenant, q.instance).set(1);
      },
    });
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The Prometheus text of /metrics. */
  async text(): Promise<string> {
    const [workers, own] = await Promise.all([this.#aggregator.clusterMetrics(), this.#registry.metrics()]);
    return promText(workers, own);
  }
}
