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
 * Decodes a phase result: its head (the faults as JSON, then, when the chain issued
 * operations, SEP and their records: see decodeHead), a newline, the ctx JSON, and the
 * body set by a body setter (setRawBody, setChunk) after a second newline. `current` is
 * the instance the runtime last named (to blame for a result it cannot make sense of);
 * `instances` how many the tenant has.
 */
export function decodeResult(out: unknown, current: number, instances: number): RunResult {
  if (typeof out !== 'string') {
    if (out === undefined) return failed('wall', current, 'a promise of the handler never settled');
    return failed('bad_return', current, 'result is not a string');
  }
  if (out.charCodeAt(0) === EARLY_OPEN) return decodeEarly(out, current, instances);
  const nl = out.indexOf('\n');
  const nl2 = nl < 0 ? -1 : out.indexOf('\n', nl + 1);
  const head = nl < 0 ? out : out.slice(0, nl);
  if (head.length > OUTPUT_CAPS.maxResultBytes) return failed('too_large', current, `result of ${head.length} bytes exceeds ${OUTPUT_CAPS.maxResultBytes}`);
  const body = nl2 < 0 ? null : out.slice(nl2 + 1);
  // The largest body cap; each body operation's own cap is checked with the operations (pdk-bridge/host/ops.ts).
  if (body !== null && body.length > MAX_BODY) return failed('too_large', current, `body of ${body.length} bytes exceeds ${MAX_BODY}`);
  const r = decodeHead(head, current, instances, nl < 0 ? '' : nl2 < 0 ? out.slice(nl + 1) : out.slice(nl + 1, nl2));
  return body === null || r.aborted ? r : { ...r, body };
}

/** Between the records and fields of a result's operations (pdk-bridge/runtime/prelude.ts opsText): escaped in any JSON. */
export const SEP = '\x1f';
/** An owner marker's instance as the runtime writes it. */
const INSTANCE = /^-?\d{1,9}$/;

/**
 * A result's head, whose length the caller has capped: the faults as JSON, then, if there
 * are operations, SEP and their records, each separated by SEP. A record is either one
 * JSON array (it starts with '['), or flat: `@` SEP instance (the owner marker), or a
 * header set or add (`rs.set`, `rs.add`, `sq.set`, `sq.add`) SEP name SEP value. Flat
 * fields hold no SEP and no newline (the runtime sends such an operation as JSON), so
 * they are read by position: a field cannot start a record, and any other kind, or a
 * record cut short, makes the result a bad_return. Each operation is then decoded into
 * the array that pdk-bridge/host/ops.ts validates, as a JSON one would be.
 */
export function decodeHead(head: string, current: number, instances: number, ctx: string): RunResult {
  const sep = head.indexOf(SEP);
  const faultsText = sep < 0 ? head : head.slice(0, sep);
  let faults: unknown;
  if (faultsText === '[]') faults = [];
  else {
    try {
      faults = JSON.parse(faultsText);
    } catch {
      return failed('bad_return', current, 'result is not JSON');
    }
  }
  if (sep < 0) return decodeParsed([[], faults], current, instances, ctx);
  const fields = head.slice(sep + 1).split(SEP);
  const ops: unknown[] = [];
  for (let i = 0; i < fields.length;) {
    if (ops.length === OUTPUT_CAPS.maxOps) return failed('too_large', current, `more than ${OUTPUT_CAPS.maxOps} operations`);
    const kind = fields[i];
    if (kind.charCodeAt(0) === 91) { // '['
      try {
        ops.push(JSON.parse(kind));
      } catch {
        return failed('bad_return', current, 'an operation is not JSON');
      }
      i++;
      continue;
    }
    switch (kind) {
      case '@': {
        const n = fields[i + 1];
        if (n === undefined || !INSTANCE.test(n)) return failed('bad_return', -1, 'invalid owner marker');
        ops.push(['@', Number(n)]);
        i += 2;
        break;
      }
      // each kind as the literal, an internalized string: the host's lookups by kind (OP_PHASES, switches) need no hashing
      case 'rs.set':
      case 'rs.add':
      case 'sq.set':
      case 'sq.add':
        if (i + 2 >= fields.length) return failed('bad_return', current, `operation ${kind} is cut short`);
        ops.push([kind === 'rs.set' ? 'rs.set' : kind === 'rs.add' ? 'rs.add' : kind === 'sq.set' ? 'sq.set' : 'sq.add', fields[i + 1], fields[i + 2]]);
        i += 3;
        break;
      default:
        return failed('bad_return', current, 'an operation record has the wrong shape');
    }
  }
  return decodeParsed([ops, faults], current, instances, ctx);
}

/**
 * An early access call's result: '^', headerFilter's head, a newline, its ctx
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

/** Decodes `[ops, faults]` (decoded from a head, or as tests build them), with the ctx JSON that came with it. */
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
