import { OUTCOME, type Fault, type FaultOutcome } from './outcome.ts';
import { OUTPUT_CAPS } from './limits.ts';
import type { AsyncRequest } from './suspended.ts';

/** Result of one phase run, before its operations are validated and applied. */
export type RunResult = {
  /** Operations as the runtime encoded them: untrusted, validated by pdk-bridge/host. */
  readonly ops: readonly unknown[];
  readonly faults: readonly Fault[];
  /** pdk.ctx.shared as JSON, '' when empty. */
  readonly ctx: string;
  /** The body the call's plugins set (see OpTarget.body), or null. */
  readonly body: string | null;
  /**
   * True when the call produced nothing usable (the isolate was stopped, or the result was
   * rejected): the faults say why, and no operation of any plugin of the chain survives.
   * False when faults come from the runtime, which went on past fail-open plugins.
   */
  readonly aborted: boolean;
  /** Async PDK calls the chain left unawaited (a fire-and-forget cache.set): performed, answered to nobody. Absent when none. */
  readonly detached?: readonly AsyncRequest[];
  /**
   * An access call of an early chain (EARLY_HEADER_FILTER): the result of the headerFilter
   * chain that ran in the same call, for the host to apply at header time. Absent when it
   * did not run (the chain suspended, switched or failed first). With `aborted` and no
   * faults: the call was lost while headerFilter ran (its fault is here), and access,
   * which finished, must run again on its own.
   */
  readonly early?: RunResult;
};

/** What opens the result of an early access call: '^', headerFilter's result, a newline, access's (runtime/dispatcher.ts accessDone). */
export const EARLY_OPEN = 94;

const MAX_BODY = Math.max(OUTPUT_CAPS.maxBodyBytes, OUTPUT_CAPS.maxRequestBodyBytes, OUTPUT_CAPS.maxChunkBytes);

const FAULT_REASONS_FROM_RUNTIME = new Set<FaultOutcome>((Object.keys(OUTCOME) as FaultOutcome[]).filter((o) => OUTCOME[o].fromRuntime));

/** A call that produced nothing usable: one fault, nothing of any plugin kept. */
export function failed(outcome: FaultOutcome, instance: number, detail: string): RunResult {
  return { ops: [], faults: [{ outcome, instance, detail }], ctx: '', aborted: true, body: null };
}

/**
 * Decodes a phase result: `[ops, faults]` JSON, a newline, the ctx JSON, and the body set by
 * a body setter (setRawBody, setChunk) after a second newline. `current` is the instance the runtime last named
 * (to blame for a result it cannot make sense of); `instances` how many the tenant has.
 */
export function decodeResult(out: unknown, current: number, instances: number): RunResult {
  if (typeof out !== 'string') {
    if (out === undefined) return failed('wall', current, 'a promise of the handler never settled');
    return failed('bad_return', current, 'result is not a string');
  }
  if (out.charCodeAt(0) === EARLY_OPEN) return decodeEarly(out, current, instances);
  const nl = out.indexOf('\n');
  const nl2 = nl < 0 ? -1 : out.indexOf('\n', nl + 1);
  const json = nl < 0 ? out : out.slice(0, nl);
  if (json.length > OUTPUT_CAPS.maxResultBytes) return failed('too_large', current, `result of ${json.length} bytes exceeds ${OUTPUT_CAPS.maxResultBytes}`);
  const body = nl2 < 0 ? null : out.slice(nl2 + 1);
  // The largest body cap; each body operation's own cap is checked with the operations (pdk-bridge/host/ops.ts).
  if (body !== null && body.length > MAX_BODY) return failed('too_large', current, `body of ${body.length} bytes exceeds ${MAX_BODY}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return failed('bad_return', current, 'result is not JSON');
  }
  const r = decodeParsed(parsed, current, instances, nl < 0 ? '' : nl2 < 0 ? out.slice(nl + 1) : out.slice(nl + 1, nl2));
  return body === null || r.aborted ? r : { ...r, body };
}

/**
 * An early access call's result: '^', headerFilter's `[ops, faults]`, a newline, its ctx
 * (neither holds a raw newline; headerFilter sets no body), a newline, then access's
 * result. Each part is decoded (and capped) as the result of a call of its own.
 */
function decodeEarly(out: string, current: number, instances: number): RunResult {
  const nl = out.indexOf('\n');
  const nl2 = nl < 0 ? -1 : out.indexOf('\n', nl + 1);
  if (nl2 < 0) return failed('bad_return', current, 'early result has the wrong shape');
  const access = decodeResult(out.slice(nl2 + 1), current, instances);
  if (access.aborted) return access;
  const hf = out.slice(1, nl2);
  return { ...access, early: hf.charCodeAt(0) === 91 ? decodeResult(hf, current, instances) : failed('bad_return', current, 'early result has the wrong shape') };
}

/** Decodes `[ops, faults]` already parsed, with the ctx JSON that came with it. */
export function decodeParsed(parsed: unknown, current: number, instances: number, ctx: unknown): RunResult {
  if (!Array.isArray(parsed) || parsed.length < 2 || !Array.isArray(parsed[0]) || !Array.isArray(parsed[1])) {
    return failed('bad_return', current, 'result has the wrong shape');
  }
  const ops = parsed[0] as unknown[];
  if (ops.length > OUTPUT_CAPS.maxOps) return failed('too_large', current, `${ops.length} operations exceed ${OUTPUT_CAPS.maxOps}`);
  const faults: Fault[] = [];
  for (const f of parsed[1] as unknown[]) {
    if (!Array.isArray(f) || typeof f[0] !== 'number' || !Number.isInteger(f[0]) || f[0] < -1 || f[0] >= instances) {
      return failed('bad_return', -1, 'fault entry has the wrong shape');
    }
    const reason = FAULT_REASONS_FROM_RUNTIME.has(f[1]) ? (f[1] as FaultOutcome) : 'bad_return';
    faults.push({ outcome: reason, instance: f[0], detail: typeof f[2] === 'string' ? f[2].slice(0, 1024) : '' });
  }
  let ctxJson = '';
  if (typeof ctx === 'string') {
    if (ctx.length > OUTPUT_CAPS.maxCtxBytes) return failed('too_large', current, `pdk.ctx.shared of ${ctx.length} bytes exceeds ${OUTPUT_CAPS.maxCtxBytes}`);
    ctxJson = ctx;
  }
  return { ops, faults, ctx: ctxJson, aborted: false, body: null };
}
