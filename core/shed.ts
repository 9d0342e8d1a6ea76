import type { ServerResponse } from 'node:http';
import { errorBody } from './errors.ts';
import type { RuntimeRoute } from './route.ts';
import { newErrorId, recordFault, type PipelineContext, type RequestState } from '../pdk-bridge/host/phase-call.ts';
import { PHASE } from '../pdk-bridge/host/phases.ts';
import { ARBITER } from '../sandbox/budget.ts';

type Headers = Record<string, string | string[] | undefined>;

/** What shedding needs of a request that has just been matched to its route (core/proxy.ts's Exchange). */
export type Sheddable = {
  readonly route: RuntimeRoute;
  readonly res: ServerResponse;
  readonly ctx: PipelineContext;
  readonly state: RequestState;
  closed: boolean;
  sentHeaders: Headers | null;
};

/**
 * Answers at the request's start, before any per-request work (upstream headers, request
 * snapshot, body buffering, a crossing), the requests whose answer is already known:
 *
 * - the tenant is throttled (its fair share on a saturated worker, or its hard cap):
 *   503 ISG_ERR_TENANT_THROTTLED with Retry-After;
 * - a fail-closed plugin instance of the first phase of the route's chain has its breaker
 *   open or is quarantined: the 503 ISG_ERR_PLUGIN_UNAVAILABLE the chain would answer
 *   first thing, without building what the chain needed (routes whose consumers may switch
 *   to another chain are left to the chain, which knows whom the request authenticates as).
 *
 * On a saturated worker (the arbiter's verdict for the last interval) a shed answer is held
 * for up to one arbiter interval, 100 ms (Pacer): a client that retries at once, ignoring Retry-After,
 * then costs the worker one request per connection per interval instead of as many as its
 * connection can turn around, and the loop time it took from the other tenants (no share
 * accounts for it: it runs no plugin) goes back to them.
 *
 * A throttled request runs no plugin, not even its log phase: its tenant is out of CPU
 * share. An unavailable one runs the log phase as before (the chain failed, as it would
 * have). Returns true when the request was answered.
 */
export function shed(ex: Sheddable): boolean {
  const sb = ex.route.sandbox;
  if (sb === null) return false;
  if (!sb.allow()) {
    throttled(ex);
    return true;
  }
  if (sb.blocking && ex.route.consumerChains === null) return unavailable(ex);
  return false;
}

function throttled(ex: Sheddable): void {
  const route = ex.route;
  route.metrics.throttled.inc();
  ex.state.phases = 0; // none of its plugins runs, the log phase included
  // Every 5xx carries an error id; a throttled answer's is quoted by its access log line.
  answer(ex, 'ISG_ERR_TENANT_THROTTLED', newErrorId(), route.sandbox!.retryAfterSeconds());
}

/** The fail-closed instance of the route's chain that fails every request now, if any: answered as the chain would. */
function unavailable(ex: Sheddable): boolean {
  const route = ex.route;
  const sb = route.sandbox!;
  const { phase, instances } = failClosed(route);
  for (const idx of instances) {
    const verdict = sb.verdict(idx);
    if (verdict === 'run') continue;
    const fault = { outcome: verdict, instance: idx, detail: verdict === 'quarantined' ? 'instance is quarantined' : 'circuit breaker is open' } as const;
    answer(ex, 'ISG_ERR_PLUGIN_UNAVAILABLE', recordFault(ex.ctx, route, phase, fault, false));
    return true;
  }
  return false;
}

/** The 503 with its error id (as core/errors.ts sendError writes it), now or held by the Pacer on a saturated worker. */
function answer(ex: Sheddable, code: 'ISG_ERR_TENANT_THROTTLED' | 'ISG_ERR_PLUGIN_UNAVAILABLE', errorId: string, retryAfter?: number): void {
  ex.state.errorId = errorId;
  const body = errorBody(code, errorId);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-isogate-error-id': errorId };
  if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
  ex.sentHeaders = headers;
  if (ARBITER.saturated) PACER.hold(ex, headers, body);
  else {
    ex.res.writeHead(503, headers);
    ex.res.end(body);
  }
}

/**
 * Per route: the fail-closed instances of the first phase its chain runs (rewrite, else
 * access), in chain order, with that phase. Only those: the request meets them before
 * anything else of the chain runs, so a blocked one fails it exactly as runPhase would
 * (a blocked instance of a later phase may never be reached: a plugin's exit(), an
 * upstream error). Worked out on the first request that finds an instance of the tenant
 * unhealthy (healthy tenants never get here), then kept with the route.
 */
const FIRST_PHASE = new WeakMap<RuntimeRoute, { phase: number; instances: readonly number[] }>();

function failClosed(route: RuntimeRoute): { phase: number; instances: readonly number[] } {
  let first = FIRST_PHASE.get(route);
  if (first === undefined) {
    const chain = route.sandbox!.program.chains[route.chainId] ?? {};
    first = { phase: 0, instances: [] };
    for (const phase of [PHASE.REWRITE, PHASE.ACCESS]) {
      const list = (route.chainPhases & phase) !== 0 ? chain[phase] ?? [] : [];
      if (list.length === 0) continue;
      first = { phase, instances: list.filter((idx) => route.instances[idx]?.failOpen !== true) };
      break;
    }
    FIRST_PHASE.set(route, first);
  }
  return first;
}

/**
 * Shed 503s held for up to one arbiter interval (100 ms), then sent together: one timer
 * for all of them, set by the first held answer and only while some wait (answers held
 * later wait less). An answer whose client went away meanwhile is
 * dropped (the request was logged as 499 when its connection closed).
 */
class Pacer {
  #held: { ex: Sheddable; headers: Headers; body: string }[] = [];
  #timer: NodeJS.Timeout | null = null;

  hold(ex: Sheddable, headers: Headers, body: string): void {
    this.#held.push({ ex, headers, body });
    if (this.#timer === null) {
      this.#timer = setTimeout(this.#flush, ARBITER.intervalMs);
      this.#timer.unref();
    }
  }

  #flush = (): void => {
    this.#timer = null;
    const held = this.#held;
    this.#held = [];
    for (const { ex, headers, body } of held) {
      if (ex.closed || ex.res.destroyed) continue;
      ex.res.writeHead(503, headers);
      ex.res.end(body);
    }
  };
}

const PACER = new Pacer();
