import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { promText } from '../metrics.ts';
import type { WorkerAsks } from './asks.ts';
import type { Quarantined } from './quarantine.ts';
import type { WorkerState } from './types.ts';

/** A worker's metrics as prom-client's getMetricsAsJSON gives them. */
export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];
/** How long a scrape waits for each worker's figures (prom-client's own aggregator failed the whole scrape after 5 s). */
const WORKER_METRICS_TIMEOUT_MS = 2000;

/**
 * The supervisor's /metrics: the serving workers' metrics, asked over IPC and aggregated,
 * then the supervisor's own (restarts, reloads, ready workers, quarantined plugins). A
 * worker that gives no figures in time (busy loading, dying) is left out of that scrape
 * and counted in isogate_metrics_workers_unanswered: the scrape still answers 200.
 */
export class SupervisorMetrics {
  readonly #registry = new Registry();
  readonly #asks: WorkerAsks;
  readonly #serving: () => WorkerState[];
  readonly #unanswered: Gauge;
  readonly restarts: Counter<'reason'>;
  readonly reloads: Counter<'result'>;

  /** `serving`: the workers asked for their figures; `ready`: how many are ready to serve; `quarantined`: what is quarantined now. */
  constructor(asks: WorkerAsks, serving: () => WorkerState[], ready: () => number, quarantined: () => Iterable<Quarantined>) {
    this.#asks = asks;
    this.#serving = serving;
    this.#unanswered = new Gauge({ name: 'isogate_metrics_workers_unanswered', help: 'Serving workers whose figures this scrape lacks (no answer within 2 s).', registers: [this.#registry] });
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
    const answers = await this.#asks.ask<WorkerMetrics | null>(this.#serving(), 'metrics', WORKER_METRICS_TIMEOUT_MS, () => null);
    const got = answers.filter((a) => a !== null);
    this.#unanswered.set(answers.length - got.length);
    const [workers, own] = await Promise.all([AggregatorRegistry.aggregate(got).metrics(), this.#registry.metrics()]);
    return promText(workers, own);
  }
}
