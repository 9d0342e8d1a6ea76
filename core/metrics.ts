import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.ts';

/** Prometheus text without the blank line prom-client puts between metric families. */
export function promText(...parts: string[]): string {
  return parts.join('\n').replace(/\n{2,}/g, '\n');
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PLUGIN_BUCKETS = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5];

/**
 * Every metric the gateway exports. Label children are bound at config compile time
 * (core/gateway.ts), so a request pays an increment, not a label lookup.
 *
 * Two registries, because a supervisor aggregates them differently across workers:
 * `registry` holds figures that add up (requests, faults, isolates created), summed;
 * `perProcess` holds figures of one process that do not (resident memory, heap,
 * event-loop lag quantiles, start time, live isolates), which a worker labels with its
 * slot (`worker="0"`), so each worker keeps its own series and nothing is summed wrongly.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly perProcess = new Registry();
  /** Both, for a gateway that serves its own /metrics (no supervisor). */
  readonly all: Registry;
  /** Per request: the fast kinds (core/fast-metrics.ts). */
  readonly requests: FastCounter;
  readonly requestDuration: FastHistogram;
  readonly upstreamDuration: FastHistogram;
  readonly pluginDuration: FastHistogram;
  readonly pluginFailures: Counter<'tenant' | 'plugin' | 'reason'>;
  readonly isolates: Gauge;
  readonly isolateHeap: Gauge;
  readonly isolateCreated: Counter<'tenant'>;
  readonly coldStart: Histogram;
  readonly configReloads: Counter<'result'>;
  readonly throttled: FastCounter;
  readonly instanceState: Gauge<'tenant' | 'instance' | 'state'>;
  #instanceStates: () => { tenant: string; instance: string; state: string }[] = () => [];

  constructor(live: { requests(): number; isolates(): number; heapBytes(): number }) {
    const registers = [this.registry];
    this.requests = new FastCounter({ name: 'isogate_requests_total', help: 'Requests by tenant, route and status sent to the client.', labelNames: ['tenant', 'route', 'status'], registers });
    this.requestDuration = new FastHistogram({ name: 'isogate_request_duration_seconds', help: 'Time from request to the last byte of the response.', labelNames: ['tenant', 'route'], buckets: LATENCY_BUCKETS, registers });
    this.upstreamDuration = new FastHistogram({ name: 'isogate_upstream_duration_seconds', help: 'Time from sending the request upstream to its response headers.', labelNames: ['tenant', 'route'], buckets: LATENCY_BUCKETS, registers });
    this.pluginDuration = new FastHistogram({
      name: 'isogate_plugin_call_duration_seconds',
      help: 'Wall time of one sandbox call running a chain for one phase. "plugins" names the chain (one plugin, or several joined by "+": a chain runs in one call).',
      labelNames: ['tenant', 'plugins', 'phase'],
      buckets: PLUGIN_BUCKETS,
      registers,
    });
    this.pluginFailures = new Counter({ name: 'isogate_plugin_failures_total', help: 'Plugin faults by tenant, plugin and outcome.', labelNames: ['tenant', 'plugin', 'reason'], registers });
    const own = [this.perProcess];
    this.isolates = new Gauge({ name: 'isogate_isolates', help: 'Live plugin isolates of this process.', registers: own, collect() { this.set(live.isolates()); } });
    // Read at scrape time: the request path pays one increment (core/listeners.ts), no label lookup.
    new Counter({
      name: 'isogate_worker_requests_total',
      help: 'Requests this process received on the proxy listener: with the worker label, how the kernel spread them over the workers.',
      registers: own,
      collect() {
        this.reset();
        this.inc(live.requests());
      },
    });
    this.isolateHeap = new Gauge({ name: 'isogate_isolate_heap_bytes', help: 'Heap bytes used by the live plugin isolates of this process.', registers: own, collect() { this.set(live.heapBytes()); } });
    this.isolateCreated = new Counter({ name: 'isogate_isolates_created_total', help: 'Isolates created (first use, or after a fault or eviction).', labelNames: ['tenant'], registers });
    this.coldStart = new Histogram({ name: 'isogate_isolate_cold_start_seconds', help: 'Time to create an isolate and load its plugins.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers });
    this.throttled = new FastCounter({ name: 'isogate_tenant_throttled_total', help: 'Requests refused because their tenant spent its CPU budget.', labelNames: ['tenant'], registers });
    // Under a supervisor every worker reloads each time: the supervisor counts the reload
    // once (core/supervisor.ts), and the workers' counts are left out of the aggregate.
    this.configReloads = new Counter({ name: 'isogate_config_reloads_total', help: 'Config reloads by result (ok, error).', labelNames: ['result'], registers, aggregator: 'omit' });
    const states = () => this.#instanceStates();
    this.instanceState = new Gauge({
      name: 'isogate_plugin_instance_unhealthy',
      help: 'Plugin instances whose breaker is open or half-open, or that are quarantined (1 per instance and state).',
      labelNames: ['tenant', 'instance', 'state'],
      registers,
      aggregator: 'max', // across workers: an instance is unhealthy if it is in any
      collect() {
        this.reset();
        for (const s of states()) this.labels(s.tenant, s.instance, s.state).set(1);
      },
    });
    // prom-client names them process_* and nodejs_* itself: the prefix is only ours.
    collectDefaultMetrics({ register: this.perProcess, prefix: 'isogate_' });
    // prom-client omits the start time from a cluster aggregate (it cannot be summed); with
    // the worker label each worker's is its own series, so keep it.
    const start = this.perProcess.getSingleMetric('isogate_process_start_time_seconds') as { aggregator: string } | undefined;
    if (start !== undefined) start.aggregator = 'first';
    this.all = Registry.merge([this.registry, this.perProcess]);
  }

  /** Labels this process's own figures with its worker slot (under a supervisor). */
  labelWorker(worker: string): void {
    this.perProcess.setDefaultLabels({ worker });
  }

  onInstanceStates(fn: () => { tenant: string; instance: string; state: string }[]): void {
    this.#instanceStates = fn;
  }
}
