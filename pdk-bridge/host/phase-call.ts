import { newErrorId } from '../../core/error-id.ts';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { LOG_ONLY_TARGET, applyOps, type LogSink, type OpTarget } from './ops.ts';
import { PHASE, PHASE_NAME } from './phases.ts';
import { EARLY_HEADER_FILTER } from '../phases.ts';
import { OUTCOME, type Fault } from '../../sandbox/outcome.ts';
import { Suspended, type RunResult } from '../../sandbox/phase-caller.ts';
import type { HostServices } from './services/index.ts';
import { performDetached, settleChain } from './wait.ts';
import type { RuntimeRoute } from '../../core/route.ts';
import type { Authenticated } from './auth.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { blockedInSwitches, reachedDeferred, switchTarget } from './consumer-switch.ts';

/** What the phase calls need of the gateway. */
export type PipelineContext = {
  readonly log: Logger;
  readonly failures: Counter<'tenant' | 'plugin' | 'reason'>;
  /** What async PDK calls reach (cache, counters, crypto, http). */
  readonly services: HostServices;
};

/**
 * What a request carries across its phases: the plugins' ctx, the chain it runs (the
 * route's, or the consumer variant a plugin's client.authenticate switched it to) with that
 * chain's phases, the authentication, and for the access log the time spent in sandbox
 * calls and the error id the client got.
 */
export type RequestState = {
  ctx: string;
  pluginMs: number;
  errorId: string;
  chainId: number;
  phases: number;
  auth: Authenticated | null;
  /** An early chain's headerFilter result, from the access crossing: applied at header time instead of a crossing (runHeaderFilter). */
  early: RunResult | null;
};

export function newRequestState(route: Pick<RuntimeRoute, 'chainId' | 'chainPhases'>): RequestState {
  return { ctx: '', pluginMs: 0, errorId: '', chainId: route.chainId, phases: route.chainPhases, auth: null, early: null };
}

/** The access call of an early chain: access, then headerFilter, in one crossing (core/config/chains.ts). */
const EARLY_CALL = PHASE.ACCESS | EARLY_HEADER_FILTER;

/** The request snapshot with the authenticated consumer and credential in it (`c`, `cr`), once there is one. */
export function withAuth(reqJson: string, state: RequestState): string {
  if (state.auth === null) return reqJson;
  // The request's own JSON ends at the first newline (the route's JSON follows it).
  const nl = reqJson.indexOf('\n');
  const close = (nl < 0 ? reqJson.length : nl) - 1;
  return reqJson.slice(0, close) + state.auth.snapshot + reqJson.slice(close);
}

/** Takes in the authentication the call's operations set: later phases run the chain it leads to (core/config/chains.ts). */
function authenticated(route: RuntimeRoute, state: RequestState, target: OpTarget, phase: number): void {
  const auth = target.auth!;
  state.auth = auth;
  const to = auth.consumer === null ? null : switchTarget(route, auth.consumer.id, auth.instance, phase);
  state.chainId = to === null ? route.chainId : to.chainId;
  state.phases = to === null ? route.chainPhases : to.phases;
}

function unavailable(verdict: 'breaker_open' | 'quarantined', instance: number): Fault {
  return { outcome: verdict, instance, detail: verdict === 'quarantined' ? 'instance is quarantined' : 'circuit breaker is open' };
}

/** A fault that fails the request, with the id quoted to the client and in the log. */
export type RequestFailure = { readonly fault: Fault; readonly errorId: string };

export { newErrorId };

function failed(state: RequestState, fault: Fault, errorId: string): RequestFailure {
  state.errorId = errorId;
  return { fault, errorId };
}

/** Applies only the log lines of a failed call: its other operations must not take effect. */
function applyLogOps(ops: readonly unknown[], phase: number, route: RuntimeRoute): void {
  const lines = ops.filter((op) => Array.isArray(op) && op[0] === 'log');
  if (lines.length > 0) applyOps(lines, phase, LOG_ONLY_TARGET, route.logSinks.get(phase)!);
}

/** A sink for pdk.log lines of one route and phase, made at config compile time. */
export function logSinkFor(log: Logger, route: { tenant: string; instances: RuntimeRoute['instances'] }, phase: number): LogSink {
  const phaseName = PHASE_NAME[phase];
  return (instance, level, message) => {
    log[level]({ tenant: route.tenant, plugin: route.instances[instance]?.id ?? 'unknown', phase: phaseName }, message);
  };
}

/** Logs and counts a fault; returns its error id. */
export function recordFault(ctx: PipelineContext, route: RuntimeRoute, phase: number, fault: Fault, failOpen: boolean): string {
  const errorId = newErrorId();
  const inst = route.instances[fault.instance];
  const plugin = inst?.name ?? 'unknown';
  ctx.failures.labels(route.tenant, plugin, fault.outcome).inc();
  ctx.log[OUTCOME[fault.outcome].level](
    { tenant: route.tenant, route: route.name, plugin, instance: inst?.id, phase: PHASE_NAME[phase], reason: fault.outcome, errorId, failOpen },
    `plugin fault: ${fault.detail}`,
  );
  return errorId;
}

/** A retry of the phase without the instances listed (fail-open culprits of a lost call). */
type Retry = number[];

/**
 * Runs one phase of the route's chain and applies its operations to `target`.
 * Fault policy: a fail-closed plugin's fault fails the request; a fail-open plugin is
 * skipped. When the whole call was lost (CPU or memory limit, rejected result) and the
 * culprit is fail-open, the phase runs again without it. Instances whose breaker is open,
 * or that are quarantined, fail the request fast (fail-closed) or are skipped (fail-open)
 * without entering the isolate.
 *
 * `body` is the phase's body (the request body, the response, a chunk; null: the request
 * body was over the cap), `last` true for bodyFilter's last chunk.
 *
 * Returns null to go on, or the failure to answer with; synchronously when the chain
 * finished in its call (always, for a chain that makes no async PDK call), a Promise of
 * the same when it waits on async calls (rewrite, access, response and log only).
 */
export function runPhase(
  ctx: PipelineContext,
  route: RuntimeRoute,
  phase: number,
  reqJson: string,
  phaseJson: string,
  state: RequestState,
  target: OpTarget,
  body: string | null = '',
  last = false,
  retryWithout?: number[],
): RequestFailure | null | Promise<RequestFailure | null> {
  // The chain this request runs may lack the phase (a consumer variant has phases the route's chain has not, or the other way round).
  if ((state.phases & phase) === 0) return null;
  const sandbox = route.sandbox!;
  const chainId = state.chainId;
  const req = withAuth(reqJson, state);
  let skip: number[] | undefined = retryWithout;
  // An early chain's headerFilter rides in its access call, unless a breaker or quarantine is in play (its verdicts are per phase).
  let callPhase = phase === PHASE.ACCESS && (state.phases & EARLY_HEADER_FILTER) !== 0 && !sandbox.blocking ? EARLY_CALL : phase;
  let deferred: number[] = [];
  if (sandbox.blocking) {
    const list = sandbox.program.chains[chainId][phase] ?? [];
    for (const idx of list) {
      const verdict = sandbox.verdict(idx);
      if (verdict === 'run') continue;
      if (route.instances[idx]?.failOpen === true) {
        (skip ??= []).push(idx);
        continue;
      }
      const fault = unavailable(verdict, idx);
      return failed(state, fault, recordFault(ctx, route, phase, fault, false));
    }
    if (route.consumerChains !== null && phase <= PHASE.ACCESS) {
      const b = blockedInSwitches(route, sandbox, chainId, phase);
      if (b.skip.length > 0) skip = [...(skip ?? []), ...b.skip];
      deferred = b.deferred;
    }
  }
  for (;;) {
    const r = call(route, chainId, callPhase, req, phaseJson, state, skip, body, last);
    callPhase = phase; // a second call (a retry) runs access alone: headerFilter crosses at header time
    if (r instanceof Suspended) return settlePhase(ctx, route, chainId, phase, req, phaseJson, state, target, body, r, skip, deferred);
    if (r.early !== undefined && r.aborted) {
      // lost while the early headerFilter ran: that is headerFilter's fault, answered at header time; access again, alone
      state.early = r.early;
      continue;
    }
    const v = conclude(ctx, route, chainId, phase, state, target, r, skip, deferred);
    if (v === null && r.early !== undefined) state.early = r.early;
    if (v === null || !Array.isArray(v)) return v;
    skip = v;
  }
}

/**
 * headerFilter at header time: the result an early chain's access crossing brought
 * (state.early), concluded as a headerFilter call's would be (the same faults, status,
 * error id and breaker counts, applied now), with no crossing; or the crossing itself.
 * When the early result calls for a second run without a fail-open culprit (its call was
 * lost, or it issued a refused operation), that run is a headerFilter crossing, as today's.
 */
export function runHeaderFilter(ctx: PipelineContext, route: RuntimeRoute, reqJson: string, snapshot: object, state: RequestState, target: OpTarget, body: string | null): RequestFailure | null {
  const early = state.early;
  if (early === null) return runFilterPhase(ctx, route, PHASE.HEADER_FILTER, reqJson, JSON.stringify(snapshot), state, target, body);
  state.early = null;
  const v = conclude(ctx, route, state.chainId, PHASE.HEADER_FILTER, state, target, early, undefined, NO_DEFERRED);
  if (v === null || !Array.isArray(v)) return v;
  return runPhase(ctx, route, PHASE.HEADER_FILTER, reqJson, JSON.stringify(snapshot), state, target, body, false, v) as RequestFailure | null;
}

const NO_DEFERRED: readonly number[] = [];

/** One call into the sandbox for the phase (the sandbox charges the tenant). */
function call(route: RuntimeRoute, chainId: number, phase: number, reqJson: string, phaseJson: string, state: RequestState, skip: number[] | undefined, body: string | null, last = false): RunResult | Suspended {
  const t0 = performance.now();
  const r = route.sandbox!.call(chainId, phase, reqJson, phaseJson, state.ctx, skip, body, last);
  meter(route, phase & ~EARLY_HEADER_FILTER, state, t0); // an early call is access's crossing
  return r;
}

/** The request's time in sandbox calls and the phase's metric. */
function meter(route: RuntimeRoute, phase: number, state: RequestState, t0: number): void {
  const t1 = performance.now();
  state.pluginMs += t1 - t0;
  route.metrics.phases.get(phase)?.observe((t1 - t0) / 1000);
}

/** The async form of runPhase's loop, from a chain that suspended. */
async function settlePhase(
  ctx: PipelineContext,
  route: RuntimeRoute,
  chainId: number,
  phase: number,
  reqJson: string,
  phaseJson: string,
  state: RequestState,
  target: OpTarget,
  body: string | null,
  first: Suspended,
  skipIn: number[] | undefined,
  deferred: number[],
): Promise<RequestFailure | null> {
  let skip = skipIn;
  let s: RunResult | Suspended = first;
  const charge = (t0: number) => meter(route, phase, state, t0);
  for (;;) {
    const r: RunResult = s instanceof Suspended ? await settleChain(route.sandbox!, s, ctx.services, charge, route.consumers) : s;
    const v = conclude(ctx, route, chainId, phase, state, target, r, skip, deferred);
    if (v === null || !Array.isArray(v)) return v;
    skip = v;
    s = call(route, chainId, phase, reqJson, phaseJson, state, skip, body);
  }
}

/**
 * What a finished call means under the fault policy: null to go on, the failure to answer
 * with, or the skip list of a second run (the call was lost and its culprit is fail-open).
 */
function conclude(
  ctx: PipelineContext,
  route: RuntimeRoute,
  chainId: number,
  phase: number,
  state: RequestState,
  target: OpTarget,
  r: RunResult,
  skipIn: number[] | undefined,
  deferred: readonly number[],
): RequestFailure | null | Retry {
  const sandbox = route.sandbox!;
  let skip = skipIn;
  if (r.detached !== undefined) performDetached(sandbox, r.detached, phase, ctx.services, route.consumers);
  let retry = false;
  for (const f of r.faults) {
    const failOpen = route.instances[f.instance]?.failOpen === true;
    const errorId = recordFault(ctx, route, phase, f, failOpen);
    if (f.instance >= 0 && sandbox.fault(f.instance, f.outcome)) {
      ctx.log.warn({ tenant: route.tenant, instance: route.instances[f.instance]?.id, cooldownMs: sandbox.cooldownMs }, 'circuit breaker opened');
    }
    if (!failOpen) {
      // The plugin's last pdk.log lines are what its author needs to debug the fault.
      if (!r.aborted) applyLogOps(r.ops, phase, route);
      return failed(state, f, errorId);
    }
    if (r.aborted) {
      (skip ??= []).push(f.instance);
      retry = true;
    }
  }
  if (retry) return skip!;
  if (sandbox.blocking) {
    for (const idx of sandbox.program.chains[chainId][phase] ?? []) {
      if (!r.faults.some((f) => f.instance === idx) && (skip === undefined || !skip.includes(idx))) sandbox.success(idx);
    }
  }
  if (deferred.length > 0) {
    // the call authenticated a consumer whose chain reaches a blocked fail-closed instance (skipped, so it never ran)
    const idx = reachedDeferred(route, r.ops, phase, deferred);
    const verdict = idx < 0 ? 'run' : sandbox.verdict(idx);
    if (verdict !== 'run') {
      const fault = unavailable(verdict, idx);
      return failed(state, fault, recordFault(ctx, route, phase, fault, false));
    }
  }
  state.ctx = r.ctx;
  const authBefore = target.auth;
  const bad = applyOps(r.ops, phase, target, route.logSinks.get(phase)!);
  if (bad !== null) {
    // Nothing of the call was applied. The plugin that issued the operation is to blame:
    // its breaker counts it, and a fail-open one is left out of a second run.
    const fault: Fault = { outcome: 'bad_return', instance: bad.instance, detail: bad.detail };
    const failOpen = route.instances[bad.instance]?.failOpen === true;
    const errorId = recordFault(ctx, route, phase, fault, failOpen);
    if (bad.instance >= 0) sandbox.fault(bad.instance, 'bad_return');
    if (failOpen && (skip === undefined || !skip.includes(bad.instance))) {
      (skip ??= []).push(bad.instance);
      return skip;
    }
    return failed(state, fault, errorId);
  }
  if (r.body !== null) target.body = r.body;
  if (target.auth !== authBefore) authenticated(route, state, target, phase);
  return null;
}

/** One item of a log batch: the chain, the request and log snapshots, the plugins' ctx. */
export type LogItem = readonly [chainId: number, reqJson: string, phaseJson: string, ctx: string];

/**
 * The log phase of many finished requests of one tenant in one call (core/log-queue.ts
 * batches them). The fault policy of a phase whose response is sent: every fault is
 * logged and counted, a call that waits on async PDK calls ends later on its own, and
 * only the log lines of a call apply.
 */
export function runLogBatch(ctx: PipelineContext, routes: readonly RuntimeRoute[], items: readonly LogItem[]): void {
  const sandbox = routes[0].sandbox!;
  const results = sandbox.callBatch(items);
  results.forEach((r, k) => {
    const route = routes[k];
    if (!(r instanceof Suspended)) {
      concludeLog(ctx, route, r);
      return;
    }
    settleChain(sandbox, r, ctx.services, noMeter, route.consumers).then(
      (done) => concludeLog(ctx, route, done),
      (err) => ctx.log.error({ tenant: route.tenant, err: String((err as Error)?.message) }, 'async log phase failed'),
    );
  });
}

/** The log phase is off the request path: nothing to add to a request's time. */
const noMeter = (): void => {};

function concludeLog(ctx: PipelineContext, route: RuntimeRoute, r: RunResult): void {
  if (r.detached !== undefined) performDetached(route.sandbox!, r.detached, PHASE.LOG, ctx.services, route.consumers);
  for (const f of r.faults) recordFault(ctx, route, PHASE.LOG, f, route.instances[f.instance]?.failOpen === true);
  const bad = applyOps(r.ops, PHASE.LOG, LOG_ONLY_TARGET, route.logSinks.get(PHASE.LOG)!);
  if (bad !== null) recordFault(ctx, route, PHASE.LOG, { outcome: 'bad_return', instance: bad.instance, detail: bad.detail }, false);
}

/** headerFilter and bodyFilter: their chains never wait (async PDK calls are refused there), so runPhase answers at once. */
export function runFilterPhase(ctx: PipelineContext, route: RuntimeRoute, phase: number, reqJson: string, phaseJson: string, state: RequestState, target: OpTarget, body?: string | null, last?: boolean): RequestFailure | null {
  return runPhase(ctx, route, phase, reqJson, phaseJson, state, target, body, last) as RequestFailure | null;
}

/** The gateway error a failure answers with (sandbox/outcome.ts's table). */
export function failureCode(f: RequestFailure): ErrorCode {
  return OUTCOME[f.fault.outcome].error as ErrorCode;
}

const BEFORE_UPSTREAM = [PHASE.REWRITE, PHASE.ACCESS] as const;

/**
 * Runs the rewrite and access chains: a failure, or null (then `target.exit` may be set);
 * a Promise of the same from the first phase whose chain waits on async PDK calls.
 * `body`: the client's body for plugins (core/request-body.ts), '' when not buffered.
 */
export function runBeforeUpstream(ctx: PipelineContext, route: RuntimeRoute, reqJson: string, state: RequestState, target: OpTarget, body: string | null = '', from = 0): RequestFailure | null | Promise<RequestFailure | null> {
  for (let i = from; i < BEFORE_UPSTREAM.length; i++) {
    const phase = BEFORE_UPSTREAM[i];
    if ((state.phases & phase) === 0) continue;
    const failure = runPhase(ctx, route, phase, reqJson, '', state, target, body);
    if (failure instanceof Promise) return failure.then((f) => (f !== null || target.exit !== null ? f : runBeforeUpstream(ctx, route, reqJson, state, target, body, i + 1)));
    if (failure !== null || target.exit !== null) return failure;
  }
  return null;
}
