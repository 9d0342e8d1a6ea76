// In-isolate runtime: the dispatcher. One host call runs a whole chain for one phase
// (DESIGN.md: crossings, not plugin code, are what costs), collecting the operations of
// every plugin; the host applies them after the call returns.
//
// Plugin code has run in this context by the time the dispatcher works, and may have
// patched any prototype. So the dispatcher keeps its tables in prototype-less objects,
// loops by index instead of iterators, calls only intrinsics captured in the prelude, and
// encodes its result with its own encoder (JSON.stringify would honour a planted toJSON).
// Loading modules and installing a tenant's instances: load.ts.
import { $apply, $create, $current, $deadline, $indexOf, $parse, $slice, $split, ACCESS, EARLY_HEADER_FILTER, HEADER_FILTER, LOG, attachCells, beginCall, beginEarly, callOut, callSeq, capped, cappedWhy, clearCapped, instance, instances, list, setInstance, setOut, type Out } from './prelude.ts';
import { asyncOut, beginAsync, clearTimedOut, dropRequests, settle, timedOut } from './async.ts';
import { authSet, beginAuth, authChain, takeAuthChain } from './client-consumer.ts';
import { NO_CHAIN, ranks, resumeAt, runChain, setRunChain } from './consumer-chains.ts';
import { ctxBegin } from './ctx.ts';
import { describe } from './describe.ts';
import { encode, encodedCtx } from './encode.ts';
import { EXIT } from './response.ts';
import { batch, chainDone, finished, finishRun, frames, pending, restore, setBatch, setPending, suspend, type Batch } from './frames.ts';

/** Chain id -> { [phase bit]: instance indexes in priority order } (api.setup). */
export let chains: Record<number, number[] | undefined>[] | null = null;
export function setChains(c: Record<number, number[] | undefined>[] | null): void { chains = c; }
function thenOf(r: any) {
  if (r === null || (typeof r !== 'object' && typeof r !== 'function')) return undefined;
  const then = r.then;
  return typeof then === 'function' ? then : undefined;
}

/**
 * The fault of handler `idx` that just ended, or null: too_large when it hit an output cap
 * (even if it caught the error), else threw when it threw `e` (`e` undefined: it did not).
 */
function faultOf(idx: any, threw: any, e: any) {
  if (timedOut === idx) {
    clearTimedOut();
    const f = list();
    f[0] = idx; f[1] = 'timeout'; f[2] = 'waited on async PDK calls past its wall time (wallMs)';
    return f;
  }
  if (capped === idx) {
    clearCapped();
    const f = list();
    f[0] = idx; f[1] = 'too_large'; f[2] = cappedWhy;
    return f;
  }
  if (!threw) return null;
  const f = list();
  f[0] = idx; f[1] = 'threw'; f[2] = describe(e);
  return f;
}

function skipped(skip: any, idx: any) {
  if (skip === null) return false;
  for (let i = 0; i < skip.length; i++) if (skip[i] === idx) return true;
  return false;
}

/**
 * Runs `chain` from position k. Synchronous handlers run in a plain loop; a handler that
 * returns a promise continues the loop from its settlement (still inside the same host
 * call: the isolate drains its microtasks before the result is copied out).
 */
function step(seq: any, ph: any, chain: any, k: any, skip: any, faults: any, done: any) {
  for (;; k++) {
    if (authChain !== -1) {
      // a plugin authenticated a consumer with scoped plugins: the rest of this phase runs its chain
      setRunChain(takeAuthChain());
      const next = chains![runChain][ph];
      chain = next === undefined ? NO_CHAIN : next;
      k = resumeAt(chain, ranks[instance]);
    }
    if (k >= chain.length) break;
    const idx = chain[k];
    if (skipped(skip, idx)) continue;
    const inst = instances[idx];
    const handler = inst.handlers[ph];
    setInstance(idx);
    $current[0] = idx;
    $deadline[0] = inst.cpuMs;
    $current[1]++;
    let then, r;
    try {
      r = handler(inst.pdk, inst.config);
      then = thenOf(r);
    } catch (e) {
      const f = faultOf(idx, e !== EXIT, e);
      if (f === null) break; // exit()
      faults[faults.length] = f;
      if (!inst.failOpen) break;
      continue;
    }
    if (then === undefined) {
      const f = faultOf(idx, false, undefined);
      if (f !== null) {
        faults[faults.length] = f;
        if (!inst.failOpen) break;
        continue;
      }
    }
    if (then !== undefined) {
      const next = k + 1;
      let settled = false; // a plugin's then() may call us more than once: only the first counts
      const resume = function () {
        if (settled || seq !== callSeq) return; // or a promise that settled in another request's call
        settled = true;
        const f = faultOf(idx, false, undefined);
        if (f !== null) {
          faults[faults.length] = f;
          if (!inst.failOpen) return done(faults);
        }
        step(seq, ph, chain, next, skip, faults, done);
      };
      const fail = function (e: any) {
        if (settled || seq !== callSeq) return;
        settled = true;
        const f = faultOf(idx, e !== EXIT, e);
        if (f === null) return done(faults); // exit()
        faults[faults.length] = f;
        if (!inst.failOpen) return done(faults);
        step(seq, ph, chain, next, skip, faults, done);
      };
      // the callbacks a plugin's then() gets are functions of its own realm
      try { $apply(then, r, [inst.callback(resume), inst.callback(fail)]); } catch (e) { fail(e); }
      return;
    }
  }
  done(faults);
}

/**
 * The chain whose headerFilter runs early in this access call (the host asked, with
 * ACCESS | EARLY_HEADER_FILTER), or -1. Cleared when the call's chain suspends: a chain
 * resumed later ends with access alone, and the host runs headerFilter at header time.
 */
let earlyChain = -1;

/**
 * Access ended (`faults` its faults): in an early call, runs the chain's headerFilter in
 * the same call and puts both results in the call's out as '^', headerFilter's result (its
 * head (faults and operations), a newline, its ctx), a newline, then access's result as always. Only
 * when access ran as asked: not when it switched to a consumer's chain or authenticated
 * (a separate headerFilter call would see the host's record of the consumer), nor when a
 * fail-closed plugin faulted (the request fails without headers of plugins): then access's
 * result alone, and the host crosses at header time as for any chain.
 */
function accessDone(faults: any[]) {
  const id = earlyChain;
  earlyChain = -1;
  encode(faults, callOut);
  if (id === -1 || runChain !== id || authSet) return;
  for (let i = 0; i < faults.length; i++) if (!instances[faults[i][0]]?.failOpen) return;
  const out = callOut;
  const accessResult = out.s;
  const early = $create(null) as Out;
  early.s = undefined;
  beginEarly(ctxBegin(encodedCtx));
  setOut(early, function (hfFaults: any[]) {
    encode(hfFaults, early);
    out.s = '^' + early.s + '\n' + accessResult;
    setOut(out, finishRun);
  });
  out.s = undefined;
  step(callSeq, HEADER_FILTER, chains![id][HEADER_FILTER]!, 0, null, list(), chainDone);
}

function begin(ph: number, chainId: number, reqJson: string, phaseJson: string, ctxJson: string, body?: unknown, last?: unknown): number {
  setRunChain(chainId);
  beginAuth();
  beginAsync();
  return beginCall(ph, reqJson, phaseJson, ctxBegin(ctxJson), body, last);
}

/** The runtime's api: what the bundle returns to the host (load.ts adds the loading half). */
export const api: Record<string, Function> = $create(null);

/** Attaches the watchdog cells (a SharedArrayBuffer: Float64 CPU limit, Int32 at byte 8 the running instance, at byte 12 the step). */
api.attach = function (shared: any) {
  attachCells(shared);
};

/**
 * One phase of one chain. Returns the encoded result (see encode) when the chain finished
 * synchronously, the common case: a plain string crosses cheapest. When a handler awaited,
 * the chain finishes in the microtasks the isolate runs after this call; it returns
 * undefined and the host asks collect() for the result. `skip` is '' or instance indexes
 * joined by ','. `body` is the phase's body (see bodyIn), `last` true for bodyFilter's last chunk.
 */
api.run = function (chainId: any, ph: any, reqJson: any, phaseJson: any, ctxJson: any, skip: any, body: any, last: any) {
  const out = $create(null) as Out;
  out.s = undefined;
  earlyChain = -1;
  if (ph === (ACCESS | EARLY_HEADER_FILTER)) {
    ph = ACCESS;
    if (chains![chainId][HEADER_FILTER] !== undefined) earlyChain = chainId;
  }
  const seq = begin(ph, chainId, reqJson, phaseJson, ctxJson, body, last);
  dropRequests();
  setBatch(null);
  setOut(out, earlyChain === -1 ? finishRun : accessDone);
  setPending(out);
  step(seq, ph, chains![chainId][ph]!, 0, skip === '' ? null : parseSkip(skip), list(), chainDone);
  const s = out.s;
  return asyncOut === null || s === undefined ? s : finished(s);
};

/**
 * The result of the last call that returned undefined, once the isolate ran its
 * microtasks: the chain's result, or its suspension (see suspend).
 */
api.collect = function () {
  const out = pending;
  setPending(null);
  if (out === null) return undefined;
  if (out.s !== undefined) return finished(out.s);
  earlyChain = -1; // suspended (or never to settle): its headerFilter is the host's, at header time
  return suspend();
};

/**
 * Resumes suspended chain `id` with the host's answers (see settle); returns as run does
 * (undefined: ask collect). '' when no such chain is suspended (it was resumed already).
 */
api.resume = function (id: any, answersJson: any) {
  const f = frames[id];
  if (f === undefined) return '';
  delete frames[id]; // not left as a key: ids only grow
  earlyChain = -1;
  restore(f);
  dropRequests();
  setBatch(null);
  setPending(callOut);
  settle($parse(answersJson));
  // The continuations run in the microtasks after this call, under the CPU limit of the
  // instance that waited (a plugin's cpuMs holds for each crossing of its phase).
  const idx = instance;
  $current[0] = idx;
  $deadline[0] = idx >= 0 && idx < instances.length ? instances[idx].cpuMs : 0;
  $current[1]++;
  return undefined;
};

function parseSkip(text: any) {
  const parts = $apply($split, text, [',']);
  const out = list();
  for (let i = 0; i < parts.length; i++) out[i] = +parts[i];
  return out;
}

/**
 * Several log-phase runs in one call: items are [chainId, reqJson, phaseJson, ctxJson].
 * Returns as run does; the result is '[' and, per item, a newline and its faults and
 * operations (encode's text before its first newline; the log phase carries no ctx out).
 */
api.runBatch = function (items: any) {
  const out = $create(null) as Out;
  out.s = undefined;
  setPending(out);
  dropRequests();
  const b = $create(null) as Batch;
  b.items = items;
  b.k = 0;
  b.results = '';
  b.out = out;
  earlyChain = -1;
  setBatch(b);
  nextItem(b);
  return asyncOut === null || out.s === undefined ? out.s : finished(out.s);
};

function nextItem(b: any) {
  const k = b.k;
  if (k === b.items.length) { b.out.s = '[' + b.results; return; }
  const it = b.items[k];
  const seq = begin(LOG, it[0], it[1], it[2], it[3]);
  setOut($create(null), batchItemDone);
  step(seq, LOG, chains![it[0]][LOG]!, 0, null, list(), chainDone);
}

function batchItemDone(faults: any) {
  const b = batch!;
  const r = callOut;
  encode(faults, r);
  const s = r.s;
  b.results += '\n' + $apply($slice, s, [0, $apply($indexOf, s, ['\n'])]); // an item's faults and operations: no raw newline
  b.k++;
  nextItem(b);
}

