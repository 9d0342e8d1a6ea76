// In-isolate runtime, part 0: captured intrinsics and shared state.
// The files of this folder are concatenated (in name order) into one strict function body
// that the host evaluates in a fresh context before any plugin code, so every binding here
// is private to the runtime: plugin code cannot reach it, and the intrinsics are captured
// before plugin code can replace them (a plugin that patches JSON.stringify breaks only
// its own copies, never ours). The host defines `CAPS` before this file: the output caps
// of sandbox/limits.ts, and `PHASES`: the phase table of pdk-bridge/phases.ts.
const $now = Date.now;
const $round = Math.round;
const $parse = JSON.parse;
const $stringify = JSON.stringify;
const $freeze = Object.freeze;
const $keys = Object.keys;
const $create = Object.create;
const $isArray = Array.isArray;
const $String = String;
const $Error = Error;
const $TypeError = TypeError;
const $RangeError = RangeError;
const $decode = decodeURIComponent;
const $apply = Reflect.apply;
const $then = Promise.prototype.then;
const $ObjectProto = Object.prototype;
const $getProto = Object.getPrototypeOf;
const $toLower = String.prototype.toLowerCase;
const $slice = String.prototype.slice;
const $indexOf = String.prototype.indexOf;
const $split = String.prototype.split;
const $push = Array.prototype.push;
const $replace = String.prototype.replace;
const $trim = String.prototype.trim;
const $lastIndexOf = String.prototype.lastIndexOf;
const $test = RegExp.prototype.test;
const $encode = encodeURIComponent;
const $setProto = Object.setPrototypeOf;
/** Prototypes of the errors the runtime's own builtins throw: such an error must not reach a plugin (its realm is ours). */
const OWN_ERRORS = [Error.prototype, TypeError.prototype, RangeError.prototype, SyntaxError.prototype, ReferenceError.prototype, EvalError.prototype, URIError.prototype];

/**
 * An array with no prototype: writing its elements never meets a setter a plugin put on
 * Array.prototype, and reading them never meets a getter. Every array the runtime fills
 * and hands to the host is one of these.
 */
function list() {
  return $setProto([], null);
}

/** A parsed JSON object whose missing keys do not fall through to Object.prototype. */
function bare(o) {
  if (o !== null && typeof o === 'object' && !$isArray(o)) $setProto(o, null);
  return o;
}

// Watchdog handshake (see sandbox/watchdog.ts): the host arms a deadline for the whole
// call in memory the plugin never sees; the runtime writes the CPU limit (ms) of the plugin
// that is about to run, its index and a step count here, so the sentinel can time it on the
// thread's CPU clock, the watchdog can stop it and the host can name it.
// The memory is attached (api.attach) when a tenant adopts this isolate, before any
// plugin code runs: isolates are made ahead of time, before their tenant is known.
const $Float64Array = Float64Array;
const $Int32Array = Int32Array;
let $deadline = new $Float64Array(1);
let $current = new $Int32Array(2);

// Phases as bit flags, read from the table the host wrote in (pdk-bridge/phases.ts).
const REWRITE = PHASES.bits.REWRITE, ACCESS = PHASES.bits.ACCESS, HEADER_FILTER = PHASES.bits.HEADER_FILTER;
const BODY_FILTER = PHASES.bits.BODY_FILTER, RESPONSE = PHASES.bits.RESPONSE, LOG = PHASES.bits.LOG;
/** Phase bit -> name, which is also the name of the handler a module exports for it. */
const PHASE_NAMES = PHASES.names;
const ANY_PHASE = PHASES.masks.ANY_PHASE;


// State of the call in progress. Calls into one isolate never overlap, so one set of
// variables serves every request; the dispatcher resets them at the start of each call.
/**
 * The realm of the plugin calling the PDK: its JSON.parse and error constructors, and this
 * call's snapshots parsed there. Each plugin module runs in a context of its own
 * (pdk-bridge/realm.js); whatever the PDK hands a plugin is made in the plugin's realm or
 * has no prototype, so no plugin reaches the runtime's realm or another plugin's.
 */
function realmOf(kit) {
  const r = $create(null);
  r.parse = kit.parse;
  r.Error = kit.Error;
  r.TypeError = kit.TypeError;
  r.RangeError = kit.RangeError;
  r.deferred = kit.deferred;
  r.reqSeq = -1;
  r.req = null;
  r.phaseSeq = -1;
  r.phaseData = null;
  r.routeSeq = -1;
  r.routeInfo = null;
  return r;
}
/** The runtime's own realm: only its own warm-up (api.exercise) calls the PDK from here. */
const $Promise = Promise;
const OWN_REALM = realmOf({
  parse: $parse, Error: $Error, TypeError: $TypeError, RangeError: RangeError,
  deferred(rec) { return new $Promise((resolve, reject) => { rec.resolve = resolve; rec.reject = reject; }); },
});
let realm = OWN_REALM;

/**
 * The gate of the PDK functions of one realm (what pdk-bridge/realm.js forwards through):
 * notes the calling realm, and turns an error thrown by one of the runtime's builtins (a
 * native TypeError, say) into an error of the caller's realm.
 */
function gateFor(rec) {
  return function (fn, self, args) {
    realm = rec;
    try {
      return $apply(fn, self, args);
    } catch (e) {
      throw foreign(e, rec);
    }
  };
}

function foreign(e, rec) {
  if (e === null || typeof e !== 'object') return e;
  const proto = $getProto(e);
  for (let i = 0; i < OWN_ERRORS.length; i++) {
    if (proto === OWN_ERRORS[i]) {
      const m = e.message;
      return new rec.TypeError(typeof m === 'string' ? m : 'PDK call failed');
    }
  }
  return e;
}

let phase = 0;
let ops = null;          // operations collected in this call (a list()), applied by the host afterwards
let owner = -1;          // instance whose operations follow the last '@' marker in ops
let reqRaw = '';         // request snapshot as JSON, parsed on first read in each realm
let phaseRaw = '';       // phase snapshot (status, response headers) as JSON
// The body of the phase, passed as a plain string argument (no JSON escaping): rewrite and
// access the client's request body (null: over the cap), response the response body,
// bodyFilter the chunk. A plugin's set* replaces it for the plugins after it in the chain.
let bodyIn = '';
let bodyFrom = null;     // response: the upstream's body as it came (serviceResponse.getRawBody)
let bodyLast = false;    // bodyFilter: this call carries the end of the body
let bodyOut = null;      // the body set in this call, handed back after the result
let ctxRaw = '';         // pdk.ctx.shared as it came in (JSON), parsed on first use
let ctxShared = null;    // pdk.ctx.shared of this request, once a plugin touched it
let instance = -1;       // index of the running plugin instance
let exited = false;
let logLines = 0;
let outChars = 0;        // characters of strings in ops so far (CAPS.maxResultBytes)
let capped = -1;         // instance that hit a cap in this call (its handler fails as too_large), or -1
let cappedWhy = '';
// Async PDK calls (runtime/07-async.js). A chain that waits on one is suspended: the
// variables above and these are saved in a frame (60-dispatcher.js save/restore) and put
// back when the host resumes it, so other requests' calls may run in between.
let asyncCalls = 0;      // async calls this chain made (CAPS.maxAsyncCalls)
let waiting = 0;         // of those, how many the host has not answered yet
let settlers = null;     // call id -> its settle record, while unanswered; null until the first
let timedOut = -1;       // instance whose wall time (wallMs) ran out while it waited: its handler ends as `timeout`
let callOut = null;      // where this chain's encoded result goes (see encode)
let onDone = null;       // what the chain's end does with its faults (one run, or one item of a log batch)

const PHASE_BITS = PHASES.order;

function phaseName(bits) {
  let names = '';
  for (let i = 0; i < PHASE_BITS.length; i++) {
    const b = PHASE_BITS[i];
    if (bits & b) names += (names === '' ? '' : ', ') + PHASE_NAMES[b];
  }
  return names;
}

/**
 * Refuses a PDK call that would exceed an output cap: the running handler ends as
 * `too_large` (catching the error does not undo that), and nothing of the call is kept.
 */
function tooLarge(what) {
  if (capped === -1) {
    capped = instance;
    cappedWhy = what;
  }
  throw new realm.RangeError(what);
}

/**
 * Appends an operation carrying `chars` characters of strings. A marker ['@', instance]
 * precedes each plugin's operations, so the host can name the plugin behind an operation
 * it refuses.
 */
function emit(op, chars) {
  const n = ops.length + (owner !== instance ? 2 : 1);
  if (n > CAPS.maxOps) tooLarge(`more than ${CAPS.maxOps} operations in one call`);
  if (outChars + chars > CAPS.maxResultBytes) tooLarge(`operations of more than ${CAPS.maxResultBytes} characters in one call`);
  outChars += chars;
  if (owner !== instance) {
    ops[ops.length] = ['@', instance];
    owner = instance;
  }
  ops[ops.length] = op;
}

/** A header name and value within CAPS.maxHeaderBytes. */
function header(name, value, what) {
  const n = str(name, 'header name');
  const v = headerValue(value, 'header value');
  if (n.length + v.length > CAPS.maxHeaderBytes) tooLarge(`${what}: header ${$apply($slice, n, [0, 64])} of ${n.length + v.length} characters exceeds ${CAPS.maxHeaderBytes}`);
  return v;
}

const TOO_BIG = $freeze($create(null)); // thrown by the replacer of bounded(), never seen by plugins
let callSeq = 0;         // the running chain's number (a suspended chain keeps its own)
let lastSeq = 0;         // the last number handed out: numbers are never reused


/**
 * JSON of `value`, or null when it would exceed `cap` characters: the replacer counts as
 * the encoder goes and stops it at the cap, so a huge value is never encoded whole. (A
 * count, not the exact length: escapes are not counted; the host checks the exact one.)
 */
function bounded(value, cap) {
  let chars = 0;
  const replacer = function (key, v) {
    chars += key.length + 4;
    if (typeof v === 'string') chars += v.length;
    else if (typeof v === 'number') chars += 8;
    if (chars > cap) throw TOO_BIG;
    return v;
  };
  try {
    return $stringify(value, replacer);
  } catch (e) {
    if (e === TOO_BIG) return null;
    throw e;
  }
}

/** Refuses a PDK call outside the phases that allow it, naming both (Kong's checkPhase). */
function checkPhase(fn, allowed) {
  if ((phase & allowed) === 0) {
    throw new realm.Error(`${fn} is not allowed in phase ${PHASE_NAMES[phase]} (allowed in: ${phaseName(allowed)})`);
  }
}

function str(value, what) {
  if (typeof value !== 'string') throw new realm.TypeError(`${what} must be a string, got ${typeof value}`);
  return value;
}

function headerValue(value, what) {
  if (typeof value === 'number') return '' + value;
  return str(value, what);
}

/**
 * The request snapshot, parsed in the calling plugin's realm (once per call and realm).
 * The host may append a newline and the route's own JSON (router.getRoute): left unparsed
 * here, so plugins that never ask for it do not pay for it.
 */
function request() {
  const rm = realm;
  if (rm.reqSeq !== callSeq) {
    const nl = $apply($indexOf, reqRaw, ['\n']);
    const r = bare(rm.parse(nl < 0 ? reqRaw : $apply($slice, reqRaw, [0, nl])));
    bare(r.h);
    rm.req = r;
    rm.reqSeq = callSeq;
  }
  return rm.req;
}

function phaseSnapshot() {
  const rm = realm;
  if (rm.phaseSeq !== callSeq) {
    const d = phaseRaw === '' ? $create(null) : bare(rm.parse(phaseRaw));
    bare(d.h);
    rm.phaseData = d;
    rm.phaseSeq = callSeq;
  }
  return rm.phaseData;
}
