// In-isolate runtime: pdk.log, lines to the host logger with tenant and plugin attached.
// A line is cut at CAPS.maxLogChars and lines past CAPS.maxLogLines in one call are dropped:
// logging is not what a plugin answers with, so its caps never fail a request. Nothing is
// encoded past the cap (a huge object argument stops its encoder at the cap).
import type { PdkLog } from '../types.ts';
import { $apply, $create, $freeze, $isArray, $keys, $round, $slice, $split, $String, $stringify, $lastIndexOf, ANY_PHASE, LOG, bounded, logLines, checkPhase, countLogLine, emit, instance, list, phaseSnapshot, realm, request, str, tooLarge, type Snapshot } from './prelude.ts';
import { pdkRequest, target } from './request.ts';
import { routeInfo } from './node-router.ts';
import { pdkClient } from './client.ts';
import { pdkClientConsumer } from './client-consumer.ts';
import { serializeValues, setCtxWriter } from './ctx.ts';

function logAt(level: string) {
  return function (...args: unknown[]): void {
    if (logLines >= CAPS.maxLogLines) return;
    countLogLine();
    const max = CAPS.maxLogChars;
    let msg = '';
    for (let i = 0; i < args.length && msg.length < max; i++) {
      const a = args[i];
      let s: string | null | undefined;
      if (typeof a === 'string') s = a;
      else {
        try { s = bounded(a, max); } catch { s = undefined; }
        if (s === null) s = '[value too large to log]';
        else if (typeof s !== 'string') { try { s = $String(a); } catch { s = '[value that cannot be logged]'; } }
      }
      const room = max - msg.length - (i === 0 ? 0 : 1);
      if (s.length > room) s = $apply($slice, s, [0, room < 0 ? 0 : room]);
      msg += i === 0 ? s : ' ' + s;
    }
    emit(['log', instance, level, msg], msg.length);
  };
}

const SERIALIZE_MODES: Readonly<Record<string, number>> = $freeze({ set: 1, add: 1, replace: 1 });

/** Kong's set_serialize_value on the table `out` (plugin realm): a dotted key, a mode, a value as JSON ('' deletes). */
function applySerializeValue(out: any, key: string, mode: string, json: string): void {
  const parts = $apply($split, key, ['.']);
  let o = out;
  for (let i = 0; i < parts.length - 1; i++) {
    let next = o[parts[i]];
    if (next === null || typeof next !== 'object') {
      if (mode === 'replace') return;
      next = realm.parse('{}');
      o[parts[i]] = next;
    }
    o = next;
  }
  const last = parts[parts.length - 1];
  const exists = o[last] !== undefined;
  if ((mode === 'add' && exists) || (mode === 'replace' && !exists)) return;
  if (json === '') delete o[last];
  else o[last] = realm.parse(json);
}

/** Bytes of the request head as received, estimated from what the snapshot holds, plus its Content-Length. */
function requestSize(r: Snapshot): number {
  let n = r.m.length + target().length + 12;
  const names = $keys(r.h);
  for (let i = 0; i < names.length; i++) {
    const v = r.h[names[i]];
    if ($isArray(v)) for (let k = 0; k < v.length; k++) n += names[i].length + 4 + v[k].length;
    else n += names[i].length + 4 + v.length;
  }
  const cl = +r.h['content-length'];
  return cl > 0 ? n + 2 + cl : n + 2;
}

/**
 * Kong's basic log serializer (kong.log.serialize) in the log phase: request {uri, url,
 * querystring, method, headers (authorization redacted), size (estimated)}, upstream_uri,
 * response {status, headers, size}, latencies {request, kong, proxy} in ms, tries
 * [{ip: the target's host, port}], client_ip (forwarded), started_at, route, service,
 * consumer (when one is authenticated), then the log.setSerializeValue changes.
 */
function serialize(): Record<string, unknown> {
  checkPhase('log.serialize', LOG);
  const r = request();
  const ph = phaseSnapshot();
  const info = routeInfo();
  const headers: Record<string, unknown> = $create(null);
  const names = $keys(r.h);
  for (let i = 0; i < names.length; i++) {
    const k = names[i];
    headers[k] = k === 'authorization' || k === 'proxy-authorization' ? 'REDACTED' : r.h[k];
  }
  const uri = target();
  const total = ph.l === undefined ? 0 : ph.l;
  const proxy = ph.pl === undefined || ph.pl < 0 ? -1 : ph.pl;
  const tries = list();
  if (typeof ph.at === 'string' && ph.at !== '') {
    const colon = $apply($lastIndexOf, ph.at, [':']);
    let host = $apply($slice, ph.at, [0, colon]);
    if (host[0] === '[') host = $apply($slice, host, [1, host.length - 1]);
    const port = +$apply($slice, ph.at, [colon + 1]);
    for (let i = 0; i < ph.n; i++) tries[i] = { ip: host, port };
  }
  let consumer: unknown;
  try { consumer = pdkClientConsumer.getConsumer() ?? undefined; } catch { consumer = undefined; }
  const o = {
    request: {
      uri,
      url: r.s + '://' + pdkRequest.getHost() + ':' + r.o + uri,
      querystring: pdkRequest.getQuery(),
      method: r.m,
      headers,
      size: requestSize(r),
    },
    upstream_uri: ph.us === undefined || ph.us === '' ? undefined : ph.us,
    response: { status: ph.s, headers: ph.h, size: ph.rb },
    latencies: { request: $round(total), kong: $round(proxy < 0 ? total : total - proxy), proxy: proxy < 0 ? -1 : $round(proxy) },
    tries,
    client_ip: pdkClient.getForwardedIp(),
    started_at: r.t,
    route: info.route,
    service: info.service,
    consumer,
  };
  const out = realm.parse($stringify(o));
  const values = serializeValues();
  for (let i = 0; i < values.length; i++) applySerializeValue(out, values[i][0], values[i][1], values[i][2]);
  return out;
}

export const pdkLog = $freeze({
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
  serialize,
  /**
   * Kong's set_serialize_value: changes what log.serialize returns for this request (a
   * dotted key; mode 'set', 'add' or 'replace'; undefined deletes). The value is copied
   * now, as JSON of at most CAPS.maxSerializeValueChars characters, and travels with ctx.
   */
  setSerializeValue(key: any, value: any, options: any) {
    checkPhase('log.setSerializeValue', ANY_PHASE);
    const k = str(key, 'log.setSerializeValue key');
    if (k.length === 0 || k.length > 256) throw new realm.TypeError('log.setSerializeValue key must be 1 to 256 characters');
    const parts = $apply($split, k, ['.']);
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === '' || parts[i] === '__proto__') throw new realm.TypeError(`log.setSerializeValue key ${k} has an empty or forbidden segment`);
    }
    let mode = 'set';
    if (options !== undefined && options !== null) {
      const m = options.mode;
      if (m !== undefined) {
        if (typeof m !== 'string' || SERIALIZE_MODES[m] !== 1) throw new realm.TypeError("log.setSerializeValue mode must be 'set', 'add' or 'replace'");
        mode = m;
      }
    }
    const values = serializeValues();
    if (values.length >= CAPS.maxSerializeValues) tooLarge(`more than ${CAPS.maxSerializeValues} log.setSerializeValue calls in one request`);
    const json = bounded(value, CAPS.maxSerializeValueChars); // a cycle or a BigInt throws a TypeError here
    if (json === null) tooLarge(`log.setSerializeValue value encodes to more than ${CAPS.maxSerializeValueChars} characters`);
    const entry = list();
    entry[0] = k; entry[1] = mode; entry[2] = json === undefined ? '' : json;
    values[values.length] = entry;
    setCtxWriter(instance);
  },
} satisfies PdkLog);
