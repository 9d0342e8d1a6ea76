// In-isolate runtime: bodies, parsed and encoded here, inside the isolate, under the
// calling plugin's CPU limit (a crafted body costs the plugin that asked, never the host).
// Parsers take a body that crossed as a string: UTF-8 text, decoded by the host.
// Every parser bounds what it builds (CAPS.maxBodyParts parts or fields) and fails with an
// error of the plugin's realm that says what was wrong.
import { $apply, $create, $decode, $encode, $indexOf, $isArray, $keys, $replace, $slice, $split, $stringify, $toLower, $trim, bounded, headerValue, list, realm, str, tooLarge } from './prelude.ts';
import { describe } from './describe.ts';

/** RFC 2046: a multipart boundary has 1 to 70 characters. */
export const MAX_BOUNDARY = 70;
/** A '+' in a form or query: a space. */
export const PLUS = /\+/g;
const CRLF2 = '\r\n\r\n';

/** The media type of a Content-Type value, lowercased, without parameters. */
export function mediaType(contentType: unknown): string {
  if (typeof contentType !== 'string') return '';
  const semi = $apply($indexOf, contentType, [';']);
  return $apply($toLower, $apply($trim, semi < 0 ? contentType : $apply($slice, contentType, [0, semi]), []), []);
}

/** A parameter (boundary, name, filename) of a header value, unquoted; undefined when absent. */
export function headerParam(value: string, param: string): string | undefined {
  const lower = $apply($toLower, value, []);
  let at = 0;
  for (;;) {
    const i = $apply($indexOf, lower, [param + '=', at]);
    if (i < 0) return undefined;
    const before = i === 0 ? ';' : lower[i - 1];
    at = i + param.length + 1;
    if (before !== ';' && before !== ' ' && before !== '\t') continue;
    if (value[at] === '"') {
      const end = $apply($indexOf, value, ['"', at + 1]);
      return end < 0 ? undefined : $apply($slice, value, [at + 1, end]);
    }
    let end = $apply($indexOf, value, [';', at]);
    if (end < 0) end = value.length;
    return $apply($trim, $apply($slice, value, [at, end]), []);
  }
}

function badBody(what: string, detail: string): Error {
  return new realm.Error(`${what}: ${detail}`);
}

/** One more value under `name` (a repeated name becomes a list), as parseQuery does. */
export function addField(out: Record<string, any>, k: string, v: string): void {
  const prev = out[k];
  if (prev === undefined) out[k] = v;
  else if ($isArray(prev)) prev[prev.length] = v;
  else { const both = list(); both[0] = prev; both[1] = v; out[k] = both; }
}

/** Occurrences of `ch` in `raw`, counted up to just past CAPS.maxJsonContainers (native indexOf: cheap). */
function containers(raw: string, ch: string): number {
  let n = 0, at = $apply($indexOf, raw, [ch]);
  while (at >= 0 && n <= CAPS.maxJsonContainers) {
    n++;
    at = $apply($indexOf, raw, [ch, at + 1]);
  }
  return n;
}

/** application/x-www-form-urlencoded, at most CAPS.maxBodyParts fields (counted before anything is split). */
function parseForm(raw: string, what: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = $create(null);
  let at = 0, n = 0;
  while (at <= raw.length) {
    let end = $apply($indexOf, raw, ['&', at]);
    if (end < 0) end = raw.length;
    if (end > at) {
      if (++n > CAPS.maxBodyParts) throw badBody(what, `more than ${CAPS.maxBodyParts} form fields`);
      const part = $apply($slice, raw, [at, end]);
      const eq = $apply($indexOf, part, ['=']);
      let k = eq < 0 ? part : $apply($slice, part, [0, eq]);
      let v = eq < 0 ? '' : $apply($slice, part, [eq + 1]);
      try { k = $decode($apply($replace, k, [PLUS, ' '])); v = $decode($apply($replace, v, [PLUS, ' '])); } catch { /* keep raw */ }
      addField(out, k, v);
    }
    at = end + 1;
  }
  return out;
}

/**
 * multipart/form-data: field name -> value (a file part's value is its content as text; a
 * repeated name becomes a list). Refused with an error: no or an over-long boundary, more
 * than CAPS.maxBodyParts parts, part headers over CAPS.maxHeaderBytes, a part without a
 * name, a body that does not end with the closing delimiter.
 */
function parseMultipart(raw: string, contentType: string, what: string): Record<string, string | string[]> {
  const boundary = headerParam(contentType, 'boundary');
  if (boundary === undefined || boundary.length === 0) throw badBody(what, 'multipart body without a boundary parameter');
  if (boundary.length > MAX_BOUNDARY) throw badBody(what, `multipart boundary of ${boundary.length} characters (at most ${MAX_BOUNDARY})`);
  const delim = '--' + boundary;
  const out: Record<string, string | string[]> = $create(null);
  let at = $apply($indexOf, raw, [delim]);
  if (at < 0) throw badBody(what, 'multipart body without its boundary');
  let n = 0;
  for (;;) {
    at += delim.length;
    if (raw[at] === '-' && raw[at + 1] === '-') return out; // the closing delimiter
    if (raw[at] !== '\r' || raw[at + 1] !== '\n') throw badBody(what, 'malformed multipart delimiter line');
    if (++n > CAPS.maxBodyParts) throw badBody(what, `more than ${CAPS.maxBodyParts} multipart parts`);
    const start = at + 2;
    const headEnd = $apply($indexOf, raw, [CRLF2, start]);
    if (headEnd < 0 || headEnd - start > CAPS.maxHeaderBytes) throw badBody(what, `multipart part ${n} has no end of headers within ${CAPS.maxHeaderBytes} characters`);
    const next = $apply($indexOf, raw, ['\r\n' + delim, headEnd + 4]);
    if (next < 0) throw badBody(what, `multipart part ${n} is not terminated by the boundary`);
    const head = $apply($slice, raw, [start, headEnd]);
    let name: string | undefined;
    const lines = $apply($split, head, ['\r\n']);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if ($apply($toLower, $apply($slice, line, [0, 20]), []) === 'content-disposition:') name = headerParam(line, 'name');
    }
    if (name === undefined) throw badBody(what, `multipart part ${n} has no Content-Disposition name`);
    addField(out, name, $apply($slice, raw, [headEnd + 4, next]));
    at = next + 2;
  }
}

/**
 * A body parsed by its media type (`mimeType` when given, else the Content-Type): JSON
 * (in the calling plugin's realm), form or multipart. An unsupported type is an error.
 */
export function parseBody(raw: string, contentType: unknown, mimeType: unknown, what: string): unknown {
  const ct = mimeType === undefined || mimeType === null ? contentType : str(mimeType, 'mime type');
  const type = mediaType(ct);
  if (type === 'application/json' || (type !== '' && $apply($slice, type, [-5]) === '+json')) {
    if (containers(raw, '[') + containers(raw, '{') > CAPS.maxJsonContainers) throw badBody(what, `JSON body with more than ${CAPS.maxJsonContainers} objects and arrays`);
    try {
      return realm.parse(raw);
    } catch (e) {
      throw badBody(what, 'body is not JSON: ' + describe(e));
    }
  }
  if (type === 'application/x-www-form-urlencoded') return parseForm(raw, what);
  if (type === 'multipart/form-data') return parseMultipart(raw, ct as string, what);
  throw badBody(what, `cannot parse a body of type ${type === '' ? '(none)' : $stringify($apply($slice, type, [0, 100]))} (JSON, form or multipart)`);
}

/** Plain data as a form body (values: strings, numbers, booleans, or lists of them). */
function encodeForm(obj: any, cap: number, what: string): string {
  if (obj === null || typeof obj !== 'object') throw new realm.TypeError(`${what}: a form body must be an object`);
  const names = $keys(obj);
  if (names.length > CAPS.maxBodyParts) tooLarge(`${what}: more than ${CAPS.maxBodyParts} form fields`);
  let s = '';
  for (let i = 0; i < names.length; i++) {
    const k = names[i];
    const v = obj[k];
    const vs = $isArray(v) ? v : [v];
    for (let j = 0; j < vs.length; j++) {
      const x = vs[j];
      if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') throw new realm.TypeError(`${what}: form field ${$apply($slice, k, [0, 64])} must be a string, number or boolean`);
      s += (s === '' ? '' : '&') + $encode(k) + '=' + $encode('' + x);
      if (s.length > cap) tooLarge(`${what}: body encodes to more than ${cap} characters`);
    }
  }
  return s;
}

/** Plain data as a multipart/form-data body with `boundary`. */
function encodeMultipart(obj: any, boundary: string, cap: number, what: string): string {
  if (obj === null || typeof obj !== 'object') throw new realm.TypeError(`${what}: a multipart body must be an object`);
  const names = $keys(obj);
  if (names.length > CAPS.maxBodyParts) tooLarge(`${what}: more than ${CAPS.maxBodyParts} parts`);
  let s = '';
  for (let i = 0; i < names.length; i++) {
    const k = names[i];
    const vs = $isArray(obj[k]) ? obj[k] : [obj[k]];
    for (let j = 0; j < vs.length; j++) {
      const v = headerValue(vs[j], `${what}: part ${$apply($slice, k, [0, 64])}`);
      if ($apply($indexOf, v, ['--' + boundary]) >= 0) throw new realm.Error(`${what}: part ${$apply($slice, k, [0, 64])} contains the boundary`);
      s += '--' + boundary + '\r\nContent-Disposition: form-data; name="' + $apply($replace, k, [QUOTE, '%22']) + '"\r\n\r\n' + v + '\r\n';
      if (s.length > cap) tooLarge(`${what}: body encodes to more than ${cap} characters`);
    }
  }
  return s + '--' + boundary + '--\r\n';
}
const QUOTE = /"/g;

/**
 * `value` encoded as a body of media type `ct` (JSON, form or multipart; a string is sent
 * as it is), within `cap` characters.
 */
export function encodeBody(value: unknown, ct: unknown, cap: number, what: string): string {
  if (typeof value === 'string') {
    if (value.length > cap) tooLarge(`${what}: body of ${value.length} characters exceeds ${cap}`);
    return value;
  }
  const type = mediaType(ct);
  if (type === 'application/x-www-form-urlencoded') return encodeForm(value, cap, what);
  if (type === 'multipart/form-data') {
    const boundary = headerParam(ct as string, 'boundary');
    if (boundary === undefined || boundary.length === 0 || boundary.length > MAX_BOUNDARY) throw new realm.Error(`${what}: multipart type needs a boundary of 1 to ${MAX_BOUNDARY} characters`);
    return encodeMultipart(value, boundary, cap, what);
  }
  if (type !== '' && type !== 'application/json' && $apply($slice, type, [-5]) !== '+json') throw new realm.Error(`${what}: cannot encode a body of type ${$stringify($apply($slice, type, [0, 100]))} (JSON, form or multipart)`);
  const text = bounded(value, cap);
  if (text === null) tooLarge(`${what}: body encodes to more than ${cap} characters`);
  if (typeof text !== 'string') throw new realm.TypeError(`${what}: body must be JSON data`);
  return text;
}
