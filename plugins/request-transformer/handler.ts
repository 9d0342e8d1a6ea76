import type { Pdk } from '../../pdk-bridge/types.ts';
import { bodyStep, editBody, type BodyConfig, type BodyStep } from './body.ts';
import { parseTemplate, render, type Template } from './template.ts';

/**
 * Kong's request-transformer, headers, querystring and uri part: edits the request sent
 * upstream in Kong's order, remove, rename, replace, add, append, each step seeing the
 * result of the one before (as Kong's does). `name:value` entries are split once per config.
 *
 * Values of replace, add and append (and replace.uri) may hold Kong's `$(...)` templates
 * (template.ts); `http_method` changes the method sent upstream. The `body` parts (body.ts)
 * edit a JSON or form body: the plugin exports `reads: ['body']`, so every route with it
 * buffers the client body (up to proxy.bodies.maxRequestBodyBytes) before access, body
 * edits or not. Not done: Kong moves body arguments to the query when the method becomes GET.
 */
type Edits = { headers: readonly string[]; querystring: readonly string[] };
type Config = BodyConfig & {
  http_method?: string;
  remove: Edits;
  rename: Edits;
  replace: Edits & { uri?: string };
  add: Edits;
  append: Edits;
};

type Pair = readonly [string, string];
type Valued = readonly [string, Template];
type Step = { remove: string[]; rename: Pair[]; replace: Valued[]; add: Valued[]; append: Valued[] };
type Compiled = { method: string | null; headers: Step | null; query: Step | null; uri: Template | null; body: BodyStep | null };

export const name = 'request-transformer';
export const version = '1.0.0';
export const priority = 801; // Kong's
export const reads = ['body'];

/** "name:value" split at the first ':' (Kong's); the name lower-cased when `lower`. */
function pair(entry: string, lower: boolean): Pair {
  const i = entry.indexOf(':');
  const n = i < 0 ? entry : entry.slice(0, i);
  return [lower ? n.toLowerCase() : n, i < 0 ? '' : entry.slice(i + 1)];
}

/** A "name:value" entry with its value parsed as a template. */
function valued(entry: string, lower: boolean, where: string): Valued {
  const [n, v] = pair(entry, lower);
  return [n, parseTemplate(v, where)];
}

function step(c: Config, part: 'headers' | 'querystring', lower: boolean): Step | null {
  const s: Step = {
    remove: c.remove[part].map((n) => (lower ? n.toLowerCase() : n)),
    rename: c.rename[part].map((e) => {
      const [from, to] = pair(e, lower);
      return [from, lower ? to.toLowerCase() : to] as const;
    }),
    replace: c.replace[part].map((e, i) => valued(e, lower, `replace.${part}[${i}]`)),
    add: c.add[part].map((e, i) => valued(e, lower, `add.${part}[${i}]`)),
    append: c.append[part].map((e, i) => valued(e, lower, `append.${part}[${i}]`)),
  };
  const any = s.remove.length + s.rename.length + s.replace.length + s.add.length + s.append.length;
  return any === 0 ? null : s;
}

// The PDK has no configure hook: each config object (frozen, one per instance and isolate)
// is compiled on its first request and kept here.
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    c = { method: config.http_method ?? null, headers: step(config, 'headers', true), query: step(config, 'querystring', false), uri: config.replace.uri === undefined ? null : parseTemplate(config.replace.uri, 'replace.uri'), body: bodyStep(config) };
    compiled.set(config, c);
  }
  return c;
}

type Value = string | string[];

function appendValue(prev: Value | undefined, v: string): Value {
  if (prev === undefined) return v;
  return Array.isArray(prev) ? [...prev, v] : [prev, v];
}

/** Runs the five steps on `m` (a copy of the headers or the query); `host` gets Kong's header rules. */
function apply(pdk: Pdk, s: Step, m: Map<string, Value>, removed: Set<string> | null, headers: boolean): void {
  for (const n of s.remove) if (m.delete(n)) removed?.add(n);
  for (const [from, to] of s.rename) {
    const v = m.get(from);
    if (v === undefined) continue;
    m.delete(from);
    removed?.add(from);
    m.set(to, v);
  }
  // templates read the client's request, not the copy being edited (Kong's)
  for (const [n, t] of s.replace) if (m.has(n) || (headers && n === 'host')) m.set(n, render(pdk, t));
  for (const [n, t] of s.add) if (!m.has(n) && !(headers && n === 'host')) m.set(n, render(pdk, t));
  for (const [n, t] of s.append) if (!(headers && n === 'host')) m.set(n, appendValue(m.get(n), render(pdk, t)));
}

function editHeaders(pdk: Pdk, s: Step): void {
  const original = pdk.request.getHeaders();
  const m = new Map<string, Value>();
  for (const n in original) m.set(n, original[n]);
  const removed = new Set<string>();
  apply(pdk, s, m, removed, true);
  const sr = pdk.serviceRequest;
  for (const n of removed) if (!m.has(n)) sr.clearHeader(n);
  for (const [n, v] of m) {
    if (v === original[n]) continue; // untouched: it goes up as it came
    if (typeof v === 'string') sr.setHeader(n, v);
    else {
      sr.setHeader(n, v[0]);
      for (let i = 1; i < v.length; i++) sr.addHeader(n, v[i]);
    }
  }
}

function editQuery(pdk: Pdk, s: Step): void {
  const q = pdk.request.getQuery();
  const m = new Map<string, Value>();
  for (const n in q) m.set(n, q[n]);
  apply(pdk, s, m, null, false);
  let raw = '';
  for (const [n, v] of m) {
    const k = encodeURIComponent(n);
    if (typeof v === 'string') raw += (raw === '' ? '' : '&') + (v === '' ? k : `${k}=${encodeURIComponent(v)}`);
    else for (const one of v) raw += (raw === '' ? '' : '&') + (one === '' ? k : `${k}=${encodeURIComponent(one)}`);
  }
  pdk.serviceRequest.setRawQuery(raw);
}

export function access(pdk: Pdk, config: Config): void {
  const c = compile(config);
  if (c.method !== null) pdk.serviceRequest.setMethod(c.method);
  if (c.headers !== null) editHeaders(pdk, c.headers);
  if (c.query !== null) editQuery(pdk, c.query);
  if (c.uri !== null) pdk.serviceRequest.setPath(render(pdk, c.uri));
  if (c.body !== null) editBody(pdk, c.body);
}
