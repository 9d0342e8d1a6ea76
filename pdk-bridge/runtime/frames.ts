// In-isolate runtime: suspended chains. A chain that waits on async PDK calls
// (async.ts) leaves the runtime's variables for a frame object, so that other
// requests' calls can run in the isolate meanwhile; api.resume (dispatcher.ts) puts it
// back. Only this file makes a frame; the modules with per-call state move it in and out
// (prelude.ts saveCall, async.ts saveAsync, ctx.ts saveCtx, client-consumer.ts saveAuth,
// and their restores).
import { $create, $deadline, callOut, onDone, restoreCall, saveCall, setOut, type Out } from './prelude.ts';
import { asyncOut, restoreAsync, saveAsync, takeRequests, waiting } from './async.ts';
import { restoreCtx, saveCtx } from './ctx.ts';
import { restoreAuth, saveAuth } from './client-consumer.ts';
import { runChain, setRunChain } from './consumer-chains.ts';
import { encode } from './encode.ts';

/** The chain's end in a single run: its result goes to its out. */
export function finishRun(faults: unknown[]): void {
  encode(faults, callOut);
}

export function chainDone(faults: unknown[]): void {
  onDone(faults);
}

export const frames: Record<number, Record<string, any> | undefined> = $create(null); // frame id -> a suspended chain (save)
let frameIds = 0;

/** A log batch (api.runBatch): items [chainId, reqJson, phaseJson, ctxJson], the next one's index, the results so far. */
export type Batch = { items: any[]; k: number; results: string; out: Out };

/** The log batch this call runs (api.runBatch), or null. */
export let batch: Batch | null = null;
/** The out of a call whose chain awaited: api.collect hands it over. */
export let pending: Out | null = null;
export function setBatch(b: Batch | null): void { batch = b; }
export function setPending(out: Out | null): void { pending = out; }


/** The state of the running chain, taken out of the runtime's variables so that other calls may run. */
function save(): Record<string, any> {
  const f: Record<string, any> = $create(null);
  saveCall(f);
  saveAsync(f);
  saveCtx(f); // ctx.ts: ctx.plugin and the serialize values of this request
  // client-consumer.ts, consumer-chains.ts: who authenticated, and the chain it switched to
  f.runChain = runChain;
  saveAuth(f);
  return f;
}

/** Puts a suspended chain back: from here on its continuations are the running chain. */
export function restore(f: Record<string, any>): void {
  restoreCall(f);
  restoreAsync(f);
  restoreCtx(f);
  setRunChain(f.runChain);
  restoreAuth(f);
}

/**
 * What a call returns when its chain finished: the encoded result, preceded, when the
 * chain left async calls unawaited (a fire-and-forget cache.set), by '!', those requests
 * and a newline (the host performs them and answers nobody).
 */
export function finished(s: string): string {
  return asyncOut === null ? s : '!' + takeRequests() + '\n' + s;
}

/**
 * The chain of this call stopped with its result not made: if it waits on async calls it
 * is suspended, and the call returns '?', the frame id, a newline and the requests (and for
 * a log batch a newline, the index of the waiting item, a newline and the results of the
 * items before it). Otherwise it waits on nothing the host can give: undefined (`wall`).
 */
export function suspend(): string | undefined {
  if (waiting === 0) return undefined;
  const id = ++frameIds;
  let tail = '';
  if (batch !== null) {
    // The waiting item goes on alone: its end now makes its own result.
    tail = '\n' + batch.k + '\n[' + batch.results;
    const out = $create(null) as Out;
    out.s = undefined;
    setOut(out, finishRun);
    batch = null;
  }
  frames[id] = save();
  $deadline[0] = 0;
  return '?' + id + '\n' + (asyncOut === null ? '[]' : takeRequests()) + tail;
}

