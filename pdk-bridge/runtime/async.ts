// In-isolate runtime: the async crossing. Plugins cannot call the host; an async PDK call
// (`await pdk.cache.get(k)`) only notes a request [id, instance, service, method, args]
// and returns a promise of the caller's realm. When the chain cannot go on, the call into
// the isolate ends carrying the requests (dispatcher.ts collect); the host performs
// them on its event loop and makes a new call, api.resume, with the answers, which
// settles the promises here. Arguments are checked and capped here, at the call.
//
// Kong allows its cosockets in rewrite, access, response and log, not in the header or
// body filter: so do we (the mask is the phase table's, pdk-bridge/phases.ts).
//
// A chain that waits on async calls is suspended: the call's state and this module's are
// saved in a frame (frames.ts) and put back when the host resumes it, so other
// requests' calls may run in between.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import { $create, $isArray, bare, bounded, checkPhase, instance, list, realm, str, tooLarge, type Settler } from './prelude.ts';

export const ASYNC_PHASES = PHASES.masks.ASYNC_PHASES;

export let asyncCalls = 0;      // async calls this chain made (CAPS.maxAsyncCalls)
export let waiting = 0;         // of those, how many the host has not answered yet
export let settlers: Record<number, Settler | undefined> | null = null; // call id -> its settle record, while unanswered; null until the first
export let timedOut = -1;       // instance whose wall time (wallMs) ran out while it waited: its handler ends as `timeout`

export let asyncOut: string[] | null = null; // requests not yet handed to the host in this crossing (JSON texts), or null
let asyncIds = 0;       // ids of async calls: unique in this isolate, so an answer meets only its own call

/**
 * Starts async call `fn` (for errors, 'cache.get') of `service`.`method` with `args` (a
 * list() of plain data, encoded here under CAPS.maxAsyncArgBytes). Returns the promise.
 * `unwrap`: the host answers [] or [value], and the promise resolves to undefined or value.
 */
export function asyncCall(fn: string, allowed: number, service: string, method: string, args: unknown[], unwrap: boolean): Promise<any> {
  checkPhase(fn, allowed);
  if (timedOut === instance) throw new realm.Error(`${fn}: this plugin's wall time (wallMs) for the phase is spent`);
  if (asyncCalls >= CAPS.maxAsyncCalls) tooLarge(`${fn}: more than ${CAPS.maxAsyncCalls} async PDK calls in one phase`);
  const text = bounded(args, CAPS.maxAsyncArgBytes);
  if (text === null) tooLarge(`${fn}: arguments encode to more than ${CAPS.maxAsyncArgBytes} characters`);
  asyncCalls++;
  waiting++;
  const id = ++asyncIds;
  const rec = $create(null) as Settler;
  rec.realm = realm;
  rec.instance = instance;
  rec.resolve = null;
  rec.reject = null;
  rec.unwrap = unwrap === true;
  const p = realm.deferred(rec);
  if (settlers === null) settlers = $create(null) as Record<number, Settler | undefined>;
  settlers[id] = rec;
  if (asyncOut === null) asyncOut = list();
  asyncOut[asyncOut.length] = '[' + id + ',' + instance + ',"' + service + '","' + method + '",' + text + ']';
  return p;
}

/** A string argument within `cap` characters. */
export function shortStr(value: unknown, what: string, cap: number): string {
  const s = str(value, what);
  if (s.length > cap) throw new realm.RangeError(`${what} of ${s.length} characters exceeds ${cap}`);
  return s;
}

/** A finite number argument, `fallback` when undefined. */
export function num(value: unknown, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || value !== value || value === Infinity || value === -Infinity) throw new realm.TypeError(`${what} must be a finite number`);
  return value;
}

/** The requests noted in this crossing, as one JSON array, and none kept. */
export function takeRequests() {
  const out = asyncOut!;
  asyncOut = null;
  let s = '[';
  for (let i = 0; i < out.length; i++) s += (i === 0 ? '' : ',') + out[i];
  return s + ']';
}

/**
 * Settles the promises the host answered: `answers` is [[id, kind, text]] with kind 0 (text
 * is the result as JSON, parsed in the caller's realm), 1 (text is an error message) or 2
 * (the caller's wall time ran out: its handler will end as `timeout`). Ids this chain does
 * not wait on are ignored.
 */
export function settle(answers: [number, number, unknown][]): void {
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    const rec = settlers === null ? undefined : settlers[a[0]];
    if (rec === undefined) continue;
    settlers![a[0]] = undefined;
    waiting--;
    const rm = rec.realm;
    if (a[1] === 0) {
      let v;
      try {
        v = rm.parse(a[2] as string);
      } catch {
        rec.reject!(new rm.Error('async PDK call: unreadable result'));
        continue;
      }
      // A result object has no prototype: a `then` planted on the plugin's Object.prototype
      // cannot turn it into a thenable (the promise would call it).
      if (rec.unwrap) v = $isArray(v) && v.length > 0 ? v[0] : undefined;
      rec.resolve!(bare(v));
    } else {
      if (a[1] === 2) timedOut = rec.instance;
      rec.reject!(new rm.Error(typeof a[2] === 'string' ? a[2] : 'async PDK call failed'));
    }
  }
}

/** A new call: no async calls yet. */
export function beginAsync(): void {
  asyncCalls = 0;
  waiting = 0;
  settlers = null;
  timedOut = -1;
}

/** The timeout of `idx` was reported (dispatcher.ts faultOf). */
export function clearTimedOut(): void { timedOut = -1; }

export function saveAsync(f: Record<string, any>): void {
  f.asyncCalls = asyncCalls; f.waiting = waiting; f.settlers = settlers; f.timedOut = timedOut;
}

export function restoreAsync(f: Record<string, any>): void {
  asyncCalls = f.asyncCalls; waiting = f.waiting; settlers = f.settlers; timedOut = f.timedOut;
}

/** Starts a crossing with no requests noted (the dispatcher, at each call into the isolate). */
export function dropRequests(): void { asyncOut = null; }
