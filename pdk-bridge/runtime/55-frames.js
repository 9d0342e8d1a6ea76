// In-isolate runtime: suspended chains. A chain that waits on async PDK calls
// (07-async.js) leaves the runtime's variables for a frame object, so that other
// requests' calls can run in the isolate meanwhile; api.resume (60-dispatcher.js) puts it
// back. Only this file makes a frame; prelude.ts saveCall/restoreCall and async.ts
// saveAsync/restoreAsync move those modules' state in and out of it.
/** The chain's end in a single run: its result goes to its out. */
function finishRun(faults) {
  encode(faults, callOut);
}

function chainDone(faults) {
  onDone(faults);
}

const frames = $create(null); // frame id -> a suspended chain (save)
let frameIds = 0;

/** The state of the running chain, taken out of the runtime's variables so that other calls may run. */
function save() {
  const f = $create(null);
  saveCall(f);
  saveAsync(f);
  saveCtx(f); // ctx.ts: ctx.plugin and the serialize values of this request
  // client-consumer.ts, consumer-chains.ts: who authenticated, and the chain it switched to
  f.runChain = runChain;
  saveAuth(f);
  return f;
}

/** Puts a suspended chain back: from here on its continuations are the running chain. */
function restore(f) {
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
function finished(s) {
  return asyncOut === null ? s : '!' + takeRequests() + '\n' + s;
}

/**
 * The chain of this call stopped with its result not made: if it waits on async calls it
 * is suspended, and the call returns '?', the frame id, a newline and the requests (and for
 * a log batch a newline, the index of the waiting item, a newline and the results of the
 * items before it). Otherwise it waits on nothing the host can give: undefined (`wall`).
 */
function suspend() {
  if (waiting === 0) return undefined;
  const id = ++frameIds;
  let tail = '';
  if (batch !== null) {
    // The waiting item goes on alone: its end now makes its own result.
    tail = '\n' + batch.k + '\n[' + batch.results + ']';
    const out = $create(null);
    out.s = undefined;
    setOut(out, finishRun);
    batch = null;
  }
  frames[id] = save();
  $deadline[0] = 0;
  return '?' + id + '\n' + (asyncOut === null ? '[]' : takeRequests()) + tail;
}

