// In-isolate runtime: pdk.ctx, per-request data that travels with the request between
// phases as JSON, so it holds plain data only: `shared` (all the tenant's plugins) and
// `plugin` (one plugin instance's own).
//
// What travels (the host treats it as one opaque string, capped at CAPS.maxCtxBytes): the
// shared JSON, then, only when ctx.plugin or log.setSerializeValue was used, a tab, the
// instances' JSON (instance index -> that instance's object, as a JSON string), a tab and
// the serialize values (log.setSerializeValue). JSON never holds a raw tab.
import type { PdkCtx } from '../types.ts';
import { $apply, $create, $freeze, $indexOf, $keys, $parse, $slice, $stringify, bare, bounded, ctxRaw, ctxShared, instance, instances, list, realm, setCtxShared, str } from './prelude.ts';
import { describe } from './describe.ts';
import { encodeValue } from './encode.ts';

let pluginRaw = '';       // the instances' part as it came in
let pluginIn: Record<string, unknown> | null = null; // pluginRaw parsed (index -> JSON string), on first use
let pluginLive: Record<number, unknown> | null = null; // index -> the object handed out in this call
let serialRaw = '';       // the serialize values as they came in
let serialOut: string[][] | null = null; // list of [key, mode, JSON], once one was set in this call
export let ctxWriter = -1;       // instance that last touched ctx.plugin or setSerializeValue (blamed for a cap)

/** Splits the carried ctx at the start of a call; returns the shared part. */
export function ctxBegin(raw: string): string {
  pluginIn = null;
  pluginLive = null;
  serialOut = null;
  ctxWriter = -1;
  const tab = $apply($indexOf, raw, ['\t']);
  if (tab < 0) {
    pluginRaw = '';
    serialRaw = '';
    return raw;
  }
  const tab2 = $apply($indexOf, raw, ['\t', tab + 1]);
  pluginRaw = $apply($slice, raw, [tab + 1, tab2]);
  serialRaw = $apply($slice, raw, [tab2 + 1]);
  return $apply($slice, raw, [0, tab]);
}

function pluginState(): Record<string, unknown> {
  if (pluginIn === null) pluginIn = pluginRaw === '' ? $create(null) : bare($parse(pluginRaw));
  return pluginIn!;
}

/** The serialize values so far: a list of [key, mode, JSON] (log.setSerializeValue). */
export function serializeValues(): string[][] {
  if (serialOut === null) {
    serialOut = list<string[]>();
    if (serialRaw !== '') {
      const prev = $parse(serialRaw);
      for (let i = 0; i < prev.length; i++) serialOut[i] = prev[i];
    }
  }
  return serialOut!;
}

/**
 * Appends the instances' and serialize parts to the encoded shared part `ctx` (at the end
 * of a call); a fault in `faults` when they do not fit the cap with it.
 */
export function ctxEncode(ctx: string, faults: unknown[]): string {
  if (pluginLive === null && serialOut === null) {
    return pluginRaw === '' && serialRaw === '' ? ctx : ctx + '\t' + pluginRaw + '\t' + serialRaw;
  }
  let plugins = pluginRaw;
  if (pluginLive !== null) {
    const all = pluginState();
    const live = pluginLive;
    const touched = $keys(live);
    let failed = false;
    for (let i = 0; i < touched.length && !failed; i++) {
      const k = touched[i];
      let s: string | null;
      try {
        s = bounded(live[+k], CAPS.maxCtxBytes);
      } catch (e) {
        faults[faults.length] = [+k, 'bad_return', 'pdk.ctx.plugin is not JSON: ' + describe(e)];
        failed = true;
        break;
      }
      if (s === null) {
        faults[faults.length] = [+k, 'too_large', `pdk.ctx.plugin encodes to more than ${CAPS.maxCtxBytes} characters`];
        failed = true;
        break;
      }
      all[k] = s;
    }
    if (failed) return ctx;
    plugins = $stringify(all);
  }
  const serial = serialOut === null ? serialRaw : encodeValue(serialOut);
  const out = ctx + '\t' + plugins + '\t' + serial;
  if (out.length > CAPS.maxCtxBytes) {
    faults[faults.length] = [ctxWriter, 'too_large', `pdk.ctx (shared, plugin and serialize values) encodes to more than ${CAPS.maxCtxBytes} characters`];
    return ctx;
  }
  return out;
}

export const pdkCtx: PdkCtx = $freeze({
  /** Parsed in the realm of the first plugin that uses it in this call, then shared as it is. */
  get shared(): Record<string, unknown> {
    if (ctxShared === null) setCtxShared(ctxRaw === '' ? $create(null) : bare(realm.parse(ctxRaw)));
    return ctxShared!;
  },
  /**
   * This plugin instance's own per-request data (Kong's kong.ctx.plugin): it survives the
   * request's phases and no other instance sees it. Only the running handler's own realm
   * may read it: a stray callback of another plugin, running while this one runs, is refused.
   */
  get plugin(): Record<string, unknown> {
    const idx = instance;
    const inst = instances[idx];
    if (inst === undefined || inst.realm !== realm) throw new realm.Error('ctx.plugin is only readable from the running plugin\'s own handler');
    let live = pluginLive;
    if (live === null) {
      live = $create(null) as Record<number, unknown>;
      pluginLive = live;
    }
    let o = live[idx];
    if (o === undefined) {
      const saved = pluginState()[idx];
      o = bare(realm.parse(typeof saved === 'string' ? saved : '{}'));
      live[idx] = o;
      ctxWriter = idx;
    }
    return o as Record<string, unknown>;
  },
  get(key: unknown) { return pdkCtx.shared[str(key, 'ctx key')]; },
  set(key: unknown, value: unknown) { pdkCtx.shared[str(key, 'ctx key')] = value; },
} satisfies PdkCtx);

/** log.setSerializeValue: instance `idx` is blamed if the ctx goes over its cap. */
export function setCtxWriter(idx: number): void { ctxWriter = idx; }

/** This module's state into a suspended chain's frame (frames.ts), and back. */
export function saveCtx(f: Record<string, any>): void {
  f.pluginRaw = pluginRaw; f.pluginIn = pluginIn; f.pluginLive = pluginLive;
  f.serialRaw = serialRaw; f.serialOut = serialOut; f.ctxWriter = ctxWriter;
}

export function restoreCtx(f: Record<string, any>): void {
  pluginRaw = f.pluginRaw; pluginIn = f.pluginIn; pluginLive = f.pluginLive;
  serialRaw = f.serialRaw; serialOut = f.serialOut; ctxWriter = f.ctxWriter;
}
