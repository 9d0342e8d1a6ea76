import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's response-transformer: edits the response sent to the client, in the response
 * phase (the whole upstream response, buffered: Kong buffers it in body_filter). Headers in
 * Kong's order remove, rename, replace, add, append, each deciding on the upstream's headers
 * as they came (as Kong's does); then top-level fields of a JSON body (Content-Type
 * application/json), the same order, values cast by json_types.
 *
 * The cost: the module has a response handler, so routes running it buffer their responses
 * (up to 4 MB) even when no json edit is configured (no per-instance opt-out of buffering yet).
 */
type JsonType = 'string' | 'number' | 'boolean';
type Edits = { headers: readonly string[]; json: readonly string[] };
type Typed = Edits & { json_types: readonly JsonType[] };
type Config = { remove: Edits; rename: Edits; replace: Typed; add: Typed; append: Typed };

type Pair = readonly [string, unknown];
type Headers = { remove: string[]; rename: [string, string][]; replace: [string, string][]; add: [string, string][]; append: [string, string][] };
type Json = { remove: readonly string[]; rename: [string, string][]; replace: Pair[]; add: Pair[]; append: Pair[] };
type Compiled = { headers: Headers | null; json: Json | null };

export const name = 'response-transformer';
export const version = '1.0.0';
export const priority = 800; // Kong's

function split(entry: string): [string, string] {
  const i = entry.indexOf(':');
  return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
}

/** Kong's json_types: the i-th type casts the i-th value ("true" is true, numbers parse). */
function typed(e: Typed): Pair[] {
  return e.json.map((entry, i) => {
    const [k, v] = split(entry);
    const t = e.json_types[i] ?? 'string';
    if (t === 'boolean') return [k, v === 'true'] as const;
    if (t === 'number') {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new TypeError(`response-transformer: json value ${JSON.stringify(entry.slice(0, 64))} is not a number`);
      return [k, n] as const;
    }
    return [k, v] as const;
  });
}

// The PDK has no configure hook: each config object (frozen, one per instance and isolate)
// is compiled on its first response and kept here.
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c !== undefined) return c;
  const lower = (e: string): [string, string] => {
    const [k, v] = split(e);
    return [k.toLowerCase(), v];
  };
  const h: Headers = {
    remove: config.remove.headers.map((n) => n.toLowerCase()),
    rename: config.rename.headers.map((e) => {
      const [a, b] = split(e);
      return [a.toLowerCase(), b.toLowerCase()];
    }),
    replace: config.replace.headers.map(lower),
    add: config.add.headers.map(lower),
    append: config.append.headers.map(lower),
  };
  const j: Json = {
    remove: config.remove.json,
    rename: config.rename.json.map(split),
    replace: typed(config.replace),
    add: typed(config.add),
    append: typed(config.append),
  };
  const count = (o: Record<string, readonly unknown[]>) => Object.values(o).reduce((n, a) => n + a.length, 0);
  c = { headers: count(h) === 0 ? null : h, json: count(j) === 0 ? null : j };
  compiled.set(config, c);
  return c;
}

/** The response phase: headers, then the JSON body. */
export function response(pdk: Pdk, config: Config): void {
  editHeaders(pdk, config);
  editBody(pdk, config);
}

function editHeaders(pdk: Pdk, config: Config): void {
  const h = compile(config).headers;
  if (h === null) return;
  const r = pdk.response;
  const up = r.getHeaders();
  for (const n of h.remove) r.clearHeader(n);
  for (const [from, to] of h.rename) {
    const v = up[from];
    if (v === undefined) continue;
    if (typeof v === 'string') r.setHeader(to, v);
    else {
      r.setHeader(to, v[0]);
      for (let i = 1; i < v.length; i++) r.addHeader(to, v[i]);
    }
    r.clearHeader(from);
  }
  for (const [n, v] of h.replace) if (up[n] !== undefined) r.setHeader(n, v);
  for (const [n, v] of h.add) if (up[n] === undefined) r.setHeader(n, v);
  for (const [n, v] of h.append) r.addHeader(n, v);
}

const has = Object.hasOwn;
/** An own data property even for "__proto__": a plain assignment would set the prototype instead. */
function put(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

function editBody(pdk: Pdk, config: Config): void {
  const j = compile(config).json;
  if (j === null) return;
  const type = pdk.response.getHeader('content-type');
  if (typeof type !== 'string' || !type.toLowerCase().includes('application/json')) return;
  let body: unknown;
  try {
    body = JSON.parse(pdk.response.getRawBody());
  } catch {
    return; // not JSON after all: sent as it came (Kong's)
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
  const o = body as Record<string, unknown>;
  for (const k of j.remove) delete o[k];
  for (const [from, to] of j.rename) {
    if (!has(o, from)) continue;
    const v = o[from];
    delete o[from];
    put(o, to, v);
  }
  for (const [k, v] of j.replace) if (has(o, k)) put(o, k, v);
  for (const [k, v] of j.add) if (!has(o, k)) put(o, k, v);
  for (const [k, v] of j.append) {
    const prev = has(o, k) ? o[k] : undefined;
    put(o, k, prev === undefined ? [v] : Array.isArray(prev) ? [...prev, v] : [prev, v]);
  }
  pdk.response.setRawBody(JSON.stringify(o));
}
