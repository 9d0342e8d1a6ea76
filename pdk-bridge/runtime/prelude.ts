// In-isolate runtime: captured intrinsics and the state of the call in progress.
// The modules of this folder are bundled (sandbox/runtime-build.ts) into one strict
// function that the host evaluates in a fresh context before any plugin code, so every
// binding here is private to the runtime: plugin code cannot reach it, and the intrinsics
// are captured before plugin code can replace them (a plugin that patches JSON.stringify
// breaks only its own copies, never ours). This module is evaluated first: every other
// one imports it. `CAPS` (the output caps of sandbox/limits.ts) is defined by the build;
// the phase table is pdk-bridge/phases.ts, bundled in.
//
// The call's state is module-level `let`s read directly by the other modules (one
// variable of the bundle, as cheap as before); they change it only through the functions
// below (an import cannot be assigned), which the build checks.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';

/** Data parsed from a snapshot (JSON of the host's making). */
export type Snapshot = Record<string, any>;

/** What pdk-bridge/realm.js hands the runtime from a plugin's context. */
export type Kit = {
  parse(text: string): any;
  Error: ErrorConstructor;
  TypeError: TypeErrorConstructor;
  RangeError: RangeErrorConstructor;
  deferred(rec: Settler): Promise<unknown>;
};

/**
 * A plugin's realm as the runtime keeps it, with the copies of this call's snapshot
 * objects made for it (see mine()): `seq` is the call they belong to; null (or undefined
 * for consumer and credential, whose value may be null) until a getter asks.
 */
export type Realm = Kit & {
  seq: number;
  headers: Snapshot | null;     // request.getHeaders
  query: Snapshot | null;       // request.getQuery
  captures: any;                // request.getUriCaptures (null until asked)
  resHeaders: Snapshot | null;  // response.getHeaders (and serviceResponse's when the same)
  svcHeaders: Snapshot | null;  // serviceResponse.getHeaders when the upstream's differ
  consumer: any;                // client.getConsumer from the snapshot (undefined until asked)
  credential: any;              // client.getCredential from the snapshot (likewise)
  routeSeq: number;
  routeInfo: Snapshot | null;
};

/** The settle record of one async call (async.ts). */
export type Settler = {
  realm: Realm;
  instance: number;
  resolve: ((v: unknown) => void) | null;
  reject: ((e: unknown) => void) | null;
  unwrap: boolean;
};

/** Compile time only: `T` must be assignable to `U` (a namespace object against its types.ts interface). */
export type Satisfies<T extends U, U> = T;

/** Where a chain's encoded result goes (encode). */
export type Out = { s: string | undefined };

export const $now = Date.now;
export const $round = Math.round;
export const $parse = JSON.parse;
export const $stringify = JSON.stringify;
export const $freeze = Object.freeze;
export const $keys = Object.keys;
export const $create = Object.create;
export const $isArray = Array.isArray;
export const $String = String;
export const $Error = Error;
export const $TypeError = TypeError;
export const $RangeError = RangeError;
export const $decode = decodeURIComponent;
export const $apply = Reflect.apply;
export const $then = Promise.prototype.then;
export const $ObjectProto = Object.prototype;
export const $getProto = Object.getPrototypeOf;
export const $toLower = String.prototype.toLowerCase;
export const $slice = String.prototype.slice;
export const $indexOf = String.prototype.indexOf;
export const $split = String.prototype.split;
export const $push = Array.prototype.push;
export const $replace = String.prototype.replace;
export const $trim = String.prototype.trim;
export const $lastIndexOf = String.prototype.lastIndexOf;
export const $test = RegExp.prototype.test;
export const $encode = encodeURIComponent;
export const $setProto = Object.setPrototypeOf;
export const $hasOwn = Object.hasOwn;
/** Prototypes of the errors the runtime's own builtins throw: such an error must not reach a plugin (its realm is ours). */
export const OWN_ERRORS: unknown[] = [Error.prototype, TypeError.prototype, RangeError.prototype, SyntaxError.prototype, ReferenceError.prototype, EvalError.prototype, URIError.prototype];

/**
 * An array with no prototype: writing its elements never meets a setter a plugin put on
 * Array.prototype, and reading them never meets a getter. Every array the runtime fills
 * and hands to the host is one of these.
 */
export function list<T = any>(): T[] {
  return $setProto([], null) as T[];
}

/** A parsed JSON object whose missing keys do not fall through to Object.prototype. */
export function bare<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !$isArray(o)) $setProto(o, null);
  return o;
}

// Watchdog handshake (see sandbox/watchdog.ts): the host arms a deadline for the whole
// call in memory the plugin never sees; the runtime writes the CPU limit (ms) of the plugin
// that is about to run, its index and a step count here, so the sentinel can time it on the
// thread's CPU clock, the watchdog can stop it and the host can name it.
// The memory is attached (api.attach) when a tenant adopts this isolate, before any
// plugin code runs: isolates are made ahead of time, before their tenant is known.
export const $Float64Array = Float64Array;
export const $Int32Array = Int32Array;
export let $deadline: Float64Array = new $Float64Array(1);
export let $current: Int32Array = new $Int32Array(3);

/**
 * Attaches the watchdog cells (api.attach): Float64 CPU limit, Int32 at byte 8 the running
 * instance, at byte 12 the step, at byte 16 1 once an early headerFilter began in this call
 * (so the host knows which part a call it lost was in).
 */
export function attachCells(shared: SharedArrayBuffer): void {
  $deadline = new $Float64Array(shared, 0, 1);
  $current = new $Int32Array(shared, 8, 3);
}

// Phases as bit flags, read from the table the host wrote in (pdk-bridge/phases.ts).
export const REWRITE = PHASES.bits.REWRITE;
export const ACCESS = PHASES.bits.ACCESS;
export const HEADER_FILTER = PHASES.bits.HEADER_FILTER;
export const BODY_FILTER = PHASES.bits.BODY_FILTER;
export const RESPONSE = PHASES.bits.RESPONSE;
export const LOG = PHASES.bits.LOG;
/** Phase bit -> name, which is also the name of the handler a module exports for it. */
export const PHASE_NAMES = PHASES.names;
export const ANY_PHASE = PHASES.masks.ANY_PHASE;
/** The phase a headerFilter runs in inside the access crossing (readsResponse: false; pdk-bridge/phases.ts). */
export const EARLY_HEADER_FILTER = PHASES.early;
/** The bit of configure, which is no request phase: its operations leave as JSON (see opsText). */
export const CONFIGURE = PHASES.configure;


// State of the call in progress. Calls into one isolate never overlap, so one set of
// variables serves every request; the dispatcher resets them at the start of each call.
/**
 * The realm of the plugin calling the PDK: its JSON.parse and error constructors, and the
 * copies of this call's snapshot objects made for it. Each plugin module runs in a context of its own
 * (pdk-bridge/realm.js); whatever the PDK hands a plugin is made in the plugin's realm or
 * has no prototype, so no plugin reaches the runtime's realm or another plugin's.
 */
export function realmOf(kit: Kit): Realm {
  const r = $create(null) as Realm;
  r.parse = kit.parse;
  r.Error = kit.Error;
  r.TypeError = kit.TypeError;
  r.RangeError = kit.RangeError;
  r.deferred = kit.deferred;
  r.seq = -1;
  r.headers = null;
  r.query = null;
  r.captures = null;
  r.resHeaders = null;
  r.svcHeaders = null;
  r.consumer = undefined;
  r.credential = undefined;
  r.routeSeq = -1;
  r.routeInfo = null;
  return r;
}
/** The runtime's own realm: only its own warm-up (api.exercise) calls the PDK from here. */
export const $Promise = Promise;
export const OWN_REALM = realmOf({
  parse: $parse, Error: $Error, TypeError: $TypeError, RangeError: RangeError,
  deferred(rec: Settler) { return new $Promise((resolve, reject) => { rec.resolve = resolve; rec.reject = reject; }); },
});
export let realm: Realm = OWN_REALM;

/**
 * The gate of the PDK functions of one realm (what pdk-bridge/realm.js forwards through):
 * notes the calling realm, and turns an error thrown by one of the runtime's builtins (a
 * native TypeError, say) into an error of the caller's realm.
 */
export function gateFor(rec: Realm) {
  return function (fn: Function, self: unknown, args: ArrayLike<unknown>): unknown {
    realm = rec;
    try {
      return $apply(fn, self, args);
    } catch (e) {
      throw foreign(e, rec);
    }
  };
}

export function foreign(e: any, rec: Realm): unknown {
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

export let phase = 0;
// The operations of this call, applied by the host afterwards, as the text they leave in
// (encode.ts): each one is encoded as it is issued (under the running plugin's CPU limit)
// and appended, so the result needs no array per operation and no walk at the end. The
// records are separated by SEP; the hot ones are flat (the owner marker, a header set or
// add: kind, then its fields as they are), every other one is one JSON array. A flat field
// never holds SEP or a newline (a header op whose name or value does is sent as JSON), so
// the host reads them by position (sandbox/run-result.ts decodeHead). Configure's result is
// JSON throughout (decoded by sandbox/isolate-load.ts): its records are JSON, comma-separated.
export let opsText = '';
export let opCount = 0;         // operations in opsText, '@' markers included (CAPS.maxOps)
/** Between the records and fields of opsText: a control character, escaped in any JSON. */
export const SEP = '\x1f';
const FLAT_UNSAFE = /[\n\x1f]/;
export let owner = -1;          // instance whose operations follow the last '@' marker in ops
export let reqRaw = '';         // request snapshot as JSON, parsed on first read (request())
export let phaseRaw = '';       // phase snapshot (status, response headers) as JSON
let reqSnap: Snapshot | null = null;   // reqRaw parsed in the runtime's realm: never handed to plugin code
let phaseSnap: Snapshot | null = null; // phaseRaw likewise
// The body of the phase, passed as a plain string argument (no JSON escaping): rewrite and
// access the client's request body (null: over the cap), response the response body,
// bodyFilter the chunk. A plugin's set* replaces it for the plugins after it in the chain.
export let bodyIn: string | null = '';
export let bodyFrom: string | null = null;    // response: the upstream's body as it came (serviceResponse.getRawBody)
export let bodyLast = false;    // bodyFilter: this call carries the end of the body
export let bodyOut: string | null = null;     // the body set in this call, handed back after the result
export let ctxRaw = '';         // pdk.ctx.shared as it came in (JSON), parsed on first use
export let ctxShared: Record<string, unknown> | null = null;   // pdk.ctx.shared of this request, once a plugin touched it
export let instance = -1;       // index of the running plugin instance
export let exited = false;
export let logLines = 0;
export let outChars = 0;        // characters of strings in ops so far (CAPS.maxResultBytes)
export let capped = -1;         // instance that hit a cap in this call (its handler fails as too_large), or -1
export let cappedWhy = '';
// The async state of the chain (asyncCalls, waiting, settlers, timedOut) is async.ts's.
export let callOut: Out = null!; // where this chain's encoded result goes (see encode)
export let onDone: (faults: unknown[]) => void = null!; // what the chain's end does with its faults (one run, or one item of a log batch)

export const PHASE_BITS = PHASES.order;

export function phaseName(bits: number): string {
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
export function tooLarge(what: string): never {
  if (capped === -1) {
    capped = instance;
    cappedWhy = what;
  }
  throw new realm.RangeError(what);
}

/**
 * Appends an operation carrying `chars` characters of strings (JSON of plain data: see
 * encodeValue). A marker ['@', instance] precedes each plugin's operations, so the host can
 * name the plugin behind an operation it refuses.
 */
export function emit(op: unknown[], chars: number): void {
  emitText(encodeValue(op), chars);
}

/** emit() of an operation already encoded (`text`, a record of opsText): the caps, the owner marker. */
function emitText(text: string, chars: number): void {
  const marker = owner !== instance;
  const n = opCount + (marker ? 2 : 1);
  if (n > CAPS.maxOps) tooLarge(`more than ${CAPS.maxOps} operations in one call`);
  if (outChars + chars > CAPS.maxResultBytes) tooLarge(`operations of more than ${CAPS.maxResultBytes} characters in one call`);
  outChars += chars;
  const sep = phase === CONFIGURE ? ',' : SEP;
  const head = opCount === 0 ? '' : sep;
  if (marker) {
    opsText += head + (phase === CONFIGURE ? '["@",' + instance + '],' : '@' + SEP + instance + SEP) + text;
    owner = instance;
  } else {
    opsText += head + text;
  }
  opCount = n;
}

/** JSON of plain data made by the runtime: strings, finite numbers, booleans, null, arrays (never a plugin's object: no getter or toJSON runs). */
export function encodeValue(v: unknown): string {
  switch (typeof v) {
    case 'string': return $stringify(v);
    case 'number': return v === v && v !== Infinity && v !== -Infinity ? '' + v : 'null';
    case 'boolean': return v ? 'true' : 'false';
    default:
      if (v !== null && $isArray(v)) {
        let s = '[';
        for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + encodeValue(v[i]);
        return s + ']';
      }
      return 'null';
  }
}

/** A header name and value within CAPS.maxHeaderBytes. */
export function header(name: unknown, value: unknown, what: string): string {
  const n = str(name, 'header name');
  const v = headerValue(value, 'header value');
  if (n.length + v.length > CAPS.maxHeaderBytes) tooLarge(`${what}: header ${$apply($slice, n, [0, 64])} of ${n.length + v.length} characters exceeds ${CAPS.maxHeaderBytes}`);
  return v;
}

/** The operations that have a flat record (sandbox/run-result.ts decodeHead knows no other kind). */
export type FlatHeaderOp = 'rs.set' | 'rs.add' | 'sq.set' | 'sq.add';

/** A header operation (`sq.set`, `rs.add`, ...) of PDK function `fn`: phase checked, name and value capped, emitted. */
export function emitHeader(op: FlatHeaderOp, fn: string, allowed: number, name: unknown, value: unknown): void {
  checkPhase(fn, allowed);
  const v = header(name, value, fn);
  // the hot operation: flat, with no array and no escaping (`op` is one of ours)
  const n = name as string;
  if ($apply($test, FLAT_UNSAFE, [n]) || $apply($test, FLAT_UNSAFE, [v])) emitText('["' + op + '",' + $stringify(n) + ',' + $stringify(v) + ']', n.length + v.length);
  else emitText(op + SEP + n + SEP + v, n.length + v.length);
}

export const TOO_BIG = $freeze($create(null)); // thrown by the replacer of bounded(), never seen by plugins
export let callSeq = 0;         // the running chain's number (a suspended chain keeps its own)
export let lastSeq = 0;         // the last number handed out: numbers are never reused


/**
 * JSON of `value`, or null when it would exceed `cap` characters: the replacer counts as
 * the encoder goes and stops it at the cap, so a huge value is never encoded whole. (A
 * count, not the exact length: escapes are not counted; the host checks the exact one.)
 */
export function bounded(value: unknown, cap: number): string | null {
  let chars = 0;
  const replacer = function (key: string, v: unknown) {
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
export function checkPhase(fn: string, allowed: number): void {
  if ((phase & allowed) === 0) {
    if (phase === EARLY_HEADER_FILTER) earlyRefused(fn, allowed);
    throw new realm.Error(`${fn} is not allowed in phase ${PHASE_NAMES[phase]} (allowed in: ${phaseName(allowed)})`);
  }
}

/** checkPhase in an early headerFilter: what headerFilter may do but needs the response is refused with why. */
function earlyRefused(fn: string, allowed: number): never {
  if ((allowed & HEADER_FILTER) === 0) throw new realm.Error(`${fn} is not allowed in phase headerFilter (allowed in: ${phaseName(allowed)})`);
  const name = instance >= 0 && instance < instances.length ? instances[instance].name : 'unknown';
  throw new realm.Error(`${fn} reads the response, and plugin ${name} declares readsResponse: false: its headerFilter runs in the access crossing, before the upstream answers (drop readsResponse: false to read the response)`);
}

export function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new realm.TypeError(`${what} must be a string, got ${typeof value}`);
  return value;
}

export function headerValue(value: unknown, what: string): string {
  if (typeof value === 'number') return '' + value;
  return str(value, what);
}

// The snapshots are parsed once per call, here in the runtime's realm, and plugin code
// never gets hold of those objects: their prototypes are the runtime's, and one plugin
// could change what the next one reads. Getters of strings and numbers (a primitive
// carries no realm) read them directly; those of objects and arrays hand out copies made
// for the calling realm (mine()): objects without a prototype, arrays of the caller's
// realm (its JSON.parse). A key that comes from plugin code (a header name) is looked up
// with own() only: in a runtime object, 'constructor' or '__proto__' would answer with
// the runtime's own Object.prototype and Function.

/**
 * The request snapshot (runtime realm, read-only). The host may append a newline and the
 * route's own JSON (router.getRoute): left unparsed here, so plugins that never ask for
 * it do not pay for it.
 */
export function request(): Snapshot {
  let r = reqSnap;
  if (r === null) {
    const nl = $apply($indexOf, reqRaw, ['\n']);
    r = reqSnap = $parse(nl < 0 ? reqRaw : $apply($slice, reqRaw, [0, nl])) as Snapshot;
  }
  return r;
}

/** The phase snapshot (runtime realm, read-only): status, response headers, log figures. */
export function phaseSnapshot(): Snapshot {
  let d = phaseSnap;
  if (d === null) d = phaseSnap = phaseRaw === '' ? $create(null) as Snapshot : $parse(phaseRaw) as Snapshot;
  return d;
}

/** The value of own key `k` of a snapshot object, or undefined (never one of its prototype's). */
export function own(o: Snapshot | undefined, k: string): any {
  return o !== undefined && $hasOwn(o, k) ? o[k] : undefined;
}

/** The calling realm, its copies reset when they belong to another call. */
export function mine(): Realm {
  const rm = realm;
  if (rm.seq !== callSeq) {
    rm.seq = callSeq;
    rm.headers = null;
    rm.query = null;
    rm.captures = null;
    rm.resHeaders = null;
    rm.svcHeaders = null;
    rm.consumer = undefined;
    rm.credential = undefined;
  }
  return rm;
}

/** A header's value for the calling plugin: a string as it is, a list (Set-Cookie) as an array of its realm. */
export function headerOut(v: string | string[] | undefined): string | string[] | undefined {
  return v === undefined || typeof v === 'string' ? v : realm.parse($stringify(v));
}

/** A copy of headers `h` (runtime realm) for the calling plugin: no prototype, lists as arrays of its realm. */
export function headersOut(h: Snapshot): Snapshot {
  const out: Snapshot = $create(null);
  const names = $keys(h);
  for (let i = 0; i < names.length; i++) {
    const v = h[names[i]];
    out[names[i]] = typeof v === 'string' ? v : headerOut(v);
  }
  return out;
}

/** response.getHeaders (serviceResponse.getHeaders when the same): the calling realm's copy of the phase's headers. */
export function responseHeaders(): Snapshot {
  const rm = mine();
  if (rm.resHeaders === null) {
    const h = phaseSnapshot().h;
    if (h === undefined) return h;
    rm.resHeaders = headersOut(h);
  }
  return rm.resHeaders;
}

/** A plugin instance as the dispatcher installs it (dispatcher.ts setup). */
export type Instance = Record<string, any>;
/** Instance index -> instance: the tenant's, from api.setup (not per call). */
export let instances: Instance[] = list();
export function setInstances(next: Instance[]): void { instances = next; }

// How the other modules change the call's state (see the header).

/** A new call: phase `ph`, its snapshots and body; returns its number (never reused). */
export function beginCall(ph: number, reqJson: string, phaseJson: string, ctx: string, body: unknown, last: unknown): number {
  phase = ph;
  bodyIn = typeof body === 'string' || body === null ? body : '';
  bodyFrom = bodyIn;
  bodyLast = last === true;
  reqRaw = reqJson;
  phaseRaw = phaseJson;
  reqSnap = null;
  phaseSnap = null;
  resetOutput(ctx);
  callSeq = ++lastSeq;
  return callSeq;
}

/** What a phase writes starts empty: its operations, body out, ctx (from `ctx`), exit, log lines and caps. */
function resetOutput(ctx: string): void {
  bodyOut = null;
  opsText = '';
  opCount = 0;
  owner = -1;
  ctxRaw = ctx;
  ctxShared = null;
  exited = false;
  logLines = 0;
  outChars = 0;
  capped = -1;
}

/**
 * The early headerFilter of an access call (dispatcher.ts): a phase of its own within the
 * same call, as a separate headerFilter call would begin, except that the request snapshot
 * and the call's number stay (what plugins parsed of the request is reused). `ctx` is what
 * access left (its encoded ctx). No response snapshot: nothing of it is readable.
 */
export function beginEarly(ctx: string): void {
  phase = EARLY_HEADER_FILTER;
  bodyIn = null;
  bodyFrom = null;
  bodyLast = false;
  phaseRaw = '';
  resetOutput(ctx);
  $current[2] = 1;
}

export function setInstance(idx: number): void { instance = idx; }
export function clearCapped(): void { capped = -1; }
export function setOut(out: Out, done: (faults: unknown[]) => void): void { callOut = out; onDone = done; }
/** serviceRequest.setRawBody/setBody: the body handed back after the result. */
export function setBodyOut(text: string): void { bodyOut = text; }
/** response.setRawBody/setBody: handed back, and what the next plugins of the chain read. */
export function setBody(text: string): void { bodyOut = bodyIn = text; }
export function setExited(): void { exited = true; }
export function setCtxShared(v: Record<string, unknown>): void { ctxShared = v; }
/** pdk.log: one more line in this call. */
export function countLogLine(): void { logLines++; }

/** The call's state into frame `f` (frames.ts save). */
export function saveCall(f: Record<string, any>): void {
  f.phase = phase; f.opsText = opsText; f.opCount = opCount; f.owner = owner; f.reqRaw = reqRaw; f.phaseRaw = phaseRaw; f.reqSnap = reqSnap; f.phaseSnap = phaseSnap;
  f.bodyIn = bodyIn; f.bodyFrom = bodyFrom; f.bodyLast = bodyLast; f.bodyOut = bodyOut; f.ctxRaw = ctxRaw; f.ctxShared = ctxShared;
  f.instance = instance; f.exited = exited; f.logLines = logLines; f.outChars = outChars;
  f.capped = capped; f.cappedWhy = cappedWhy; f.callSeq = callSeq; f.realm = realm;
  f.callOut = callOut; f.onDone = onDone;
}

/** Frame `f`'s call state back (frames.ts restore). */
export function restoreCall(f: Record<string, any>): void {
  phase = f.phase; opsText = f.opsText; opCount = f.opCount; owner = f.owner; reqRaw = f.reqRaw; phaseRaw = f.phaseRaw; reqSnap = f.reqSnap; phaseSnap = f.phaseSnap;
  bodyIn = f.bodyIn; bodyFrom = f.bodyFrom; bodyLast = f.bodyLast; bodyOut = f.bodyOut; ctxRaw = f.ctxRaw; ctxShared = f.ctxShared;
  instance = f.instance; exited = f.exited; logLines = f.logLines; outChars = f.outChars;
  capped = f.capped; cappedWhy = f.cappedWhy; callSeq = f.callSeq; realm = f.realm;
  callOut = f.callOut; onDone = f.onDone;
}
