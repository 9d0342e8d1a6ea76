// In-isolate runtime, part 0: captured intrinsics and shared state.
// The files of this folder are concatenated (in name order) into one function body that the
// host evaluates in a fresh context before any plugin code, so every binding here is
// private to the runtime: plugin code cannot reach it, and the intrinsics are captured
// before plugin code can replace them (a plugin that patches JSON.stringify breaks only
// its own copies, never ours).
'use strict';
const $now = Date.now;
const $parse = JSON.parse;
const $stringify = JSON.stringify;
const $freeze = Object.freeze;
const $keys = Object.keys;
const $create = Object.create;
const $isArray = Array.isArray;
const $String = String;
const $Error = Error;
const $TypeError = TypeError;
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
const $setProto = Object.setPrototypeOf;

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

// Phases as bit flags (mirrored in pdk-bridge/host/phases.ts).
const REWRITE = 1, ACCESS = 2, HEADER_FILTER = 4, BODY_FILTER = 8, LOG = 32;
const PHASE_NAMES = { 1: 'rewrite', 2: 'access', 4: 'headerFilter', 8: 'bodyFilter', 32: 'log' };

/** Limits on what one call may hand back, mirrored and enforced again by the host. */
const MAX_LOG_CHARS = 4096;
const MAX_LOG_LINES = 64;

// State of the call in progress. Calls into one isolate never overlap, so one set of
// variables serves every request; the dispatcher resets them at the start of each call.
let phase = 0;
let ops = null;          // operations collected in this call (a list()), applied by the host afterwards
let owner = -1;          // instance whose operations follow the last '@' marker in ops
let reqRaw = '';         // request snapshot as JSON, parsed on first read
let req = null;
let phaseRaw = '';       // phase snapshot (status, response headers) as JSON
let bodyIn = '';         // bodyFilter: the response body, passed as a plain string (no JSON escaping)
let bodyOut = null;      // bodyFilter: the body set by response.setBody, handed back after the result
let phaseData = null;
let ctxShared = null;    // pdk.ctx.shared of this request
let instance = -1;       // index of the running plugin instance
let exited = false;
let logLines = 0;

const PHASE_BITS = [REWRITE, ACCESS, HEADER_FILTER, BODY_FILTER, LOG];

function phaseName(bits) {
  let names = '';
  for (let i = 0; i < PHASE_BITS.length; i++) {
    const b = PHASE_BITS[i];
    if (bits & b) names += (names === '' ? '' : ', ') + PHASE_NAMES[b];
  }
  return names;
}

/**
 * Appends an operation. A marker ['@', instance] precedes each plugin's operations, so the
 * host can name the plugin behind an operation it refuses.
 */
function emit(op) {
  if (owner !== instance) {
    ops[ops.length] = ['@', instance];
    owner = instance;
  }
  ops[ops.length] = op;
}

/** Refuses a PDK call outside the phases that allow it, naming both (Kong's checkPhase). */
function checkPhase(fn, allowed) {
  if ((phase & allowed) === 0) {
    throw new $Error(`${fn} is not allowed in phase ${PHASE_NAMES[phase]} (allowed in: ${phaseName(allowed)})`);
  }
}

function str(value, what) {
  if (typeof value !== 'string') throw new $TypeError(`${what} must be a string, got ${typeof value}`);
  return value;
}

function headerValue(value, what) {
  if (typeof value === 'number') return '' + value;
  return str(value, what);
}

function request() {
  if (req === null) {
    req = bare($parse(reqRaw));
    bare(req.h);
  }
  return req;
}

function phaseSnapshot() {
  if (phaseData === null) {
    phaseData = phaseRaw === '' ? $create(null) : bare($parse(phaseRaw));
    bare(phaseData.h);
  }
  return phaseData;
}
