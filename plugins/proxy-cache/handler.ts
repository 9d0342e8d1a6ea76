import type { Json, Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's proxy-cache, memory strategy, on pdk.cache (one cache per worker). access looks
 * the request's key up and answers a fresh entry with response.exit (X-Cache-Status: Hit);
 * the response phase (the whole upstream response, buffered) decides whether the answer is
 * cacheable and keeps the entry in ctx.plugin; log stores it.
 *
 * Why log stores, not response: the response phase may await pdk.cache too, but the
 * client would wait for the store; Kong stores off the request path as well (a timer from
 * body_filter). So the entry rides in pdk.ctx from response to log, and its size is
 * bounded by the ctx cap (OUTPUT_CAPS.maxCtxBytes, 64 KB for the whole ctx): an entry
 * whose JSON is over MAX_ENTRY characters is not cached (Bypass). The entry is stored
 * after the client has its answer, so the next request may still be a Miss.
 */
type Config = {
  response_code: number[];
  request_method: string[];
  content_type: string[];
  cache_ttl: number;
  cache_control: boolean;
  ignore_uri_case: boolean;
  storage_ttl: number | null;
  vary_query_params: string[] | null;
  vary_headers: string[] | null;
};

/** A cached answer: status, headers, body, stored at (epoch ms), fresh for ttl seconds. */
type Entry = { s: number; h: Record<string, string | string[]>; b: string; t: number; ttl: number };

export const name = 'proxy-cache';
export const version = '1.0.0';
export const priority = 100; // Kong's

/** JSON characters of one entry: under the 64 KB ctx cap with room for other plugins' ctx. */
export const MAX_ENTRY = 48 * 1024;
/** pdk.cache's key cap is 512 characters: longer keys are hashed. */
const MAX_PLAIN_KEY = 400;
/** Hop-by-hop and framing headers are the gateway's, never replayed. */
const NOT_STORED = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'trailer', 'upgrade', 'te', 'proxy-connection', 'date', 'age', 'x-cache-status', 'x-cache-key']);

/** Cache-Control as a map of lower-case directive -> value ('' for a bare one). */
function cacheControl(v: string | string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  if (v === undefined) return m;
  for (const part of (Array.isArray(v) ? v.join(',') : v).split(',')) {
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (k !== '') m.set(k, eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"|"$/g, ''));
  }
  return m;
}

function seconds(v: string | undefined): number | null {
  if (v === undefined || !/^\d+$/.test(v)) return null;
  return Number(v);
}

function contentTypeOk(type: string | string[] | undefined, allowed: string[]): boolean {
  if (typeof type !== 'string') return false;
  const mime = type.split(';')[0].trim().toLowerCase();
  const slash = mime.indexOf('/');
  for (const a of allowed) {
    const want = a.toLowerCase();
    if (want === mime || want === '*/*' || (want.endsWith('/*') && slash > 0 && want.slice(0, -1) === mime.slice(0, slash + 1))) return true;
  }
  return false;
}

/** Kong's key parts: route, consumer, method, path, the chosen query arguments and headers. */
function keyText(pdk: Pdk, config: Config): string {
  const q = pdk.request.getQuery();
  const names = (config.vary_query_params ?? Object.keys(q)).slice().sort();
  let query = '';
  for (const n of names) {
    const v = q[n];
    if (v !== undefined) query += `${encodeURIComponent(n)}=${encodeURIComponent(Array.isArray(v) ? v.join(',') : v)}&`;
  }
  let headers = '';
  for (const n of (config.vary_headers ?? []).map((h) => h.toLowerCase()).sort()) {
    const v = pdk.request.getHeader(n);
    if (v !== undefined) headers += `${n}=${encodeURIComponent(Array.isArray(v) ? v.join(',') : v)}&`;
  }
  const path = config.ignore_uri_case ? pdk.request.getPath().toLowerCase() : pdk.request.getPath();
  const consumer = pdk.client.getConsumer()?.id ?? '';
  return `${pdk.router.getRoute().id}|${consumer}|${pdk.request.getMethod()}|${path}|${query}|${headers}`;
}

async function cacheKey(pdk: Pdk, config: Config): Promise<string> {
  const text = keyText(pdk, config);
  return text.length <= MAX_PLAIN_KEY ? `proxy-cache:${text}` : `proxy-cache:#${await pdk.crypto.digest('sha256', text, 'hex')}`;
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const method = pdk.request.getMethod();
  if (!config.request_method.includes(method)) {
    pdk.response.setHeader('X-Cache-Status', 'Bypass');
    return;
  }
  const reqCc = config.cache_control ? cacheControl(pdk.request.getHeader('cache-control')) : null;
  if (reqCc !== null && reqCc.has('no-store')) {
    pdk.response.setHeader('X-Cache-Status', 'Bypass');
    return;
  }
  const key = await cacheKey(pdk, config);
  pdk.ctx.plugin.key = key;
  const refresh = reqCc !== null && (reqCc.has('no-cache') || reqCc.get('max-age') === '0');
  if (!refresh) {
    const e = (await pdk.cache.get(key)) as Entry | null | undefined;
    if (e != null) {
      const ageMs = Date.now() - e.t;
      if (ageMs < e.ttl * 1000) {
        pdk.response.exit(e.s, e.b, { ...e.h, 'X-Cache-Status': 'Hit', 'X-Cache-Key': key, Age: String(Math.max(0, Math.floor(ageMs / 1000))) });
      }
      pdk.ctx.plugin.status = 'Refresh'; // stale, still in storage (storage_ttl)
      return;
    }
  }
  pdk.ctx.plugin.status = refresh ? 'Refresh' : 'Miss';
}

/** The ttl of a cacheable response, or null when it must not be cached. */
function responseTtl(pdk: Pdk, config: Config): number | null {
  if (!config.response_code.includes(pdk.response.getStatus())) return null;
  if (!contentTypeOk(pdk.response.getHeader('content-type'), config.content_type)) return null;
  if (!config.cache_control) return config.cache_ttl;
  const cc = cacheControl(pdk.response.getHeader('cache-control'));
  if (cc.has('no-store') || cc.has('private') || cc.has('no-cache')) return null;
  const ttl = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age')) ?? config.cache_ttl;
  return ttl > 0 ? ttl : null;
}

export function response(pdk: Pdk, config: Config): void {
  const key = pdk.ctx.plugin.key as string | undefined;
  const status = pdk.ctx.plugin.status as string | undefined;
  if (key === undefined || status === undefined) return; // bypassed in access
  const ttl = responseTtl(pdk, config);
  let entry: Entry | null = null;
  if (ttl !== null) {
    const h: Record<string, string | string[]> = {};
    let n = 0;
    for (const [k, v] of Object.entries(pdk.response.getHeaders())) {
      if (NOT_STORED.has(k.toLowerCase()) || ++n > 90) continue; // response.exit takes <= 100 headers
      h[k] = v;
    }
    entry = { s: pdk.response.getStatus(), h, b: pdk.response.getRawBody(), t: Date.now(), ttl };
    if (JSON.stringify(entry).length > MAX_ENTRY) entry = null;
  }
  pdk.response.setHeader('X-Cache-Status', entry === null ? 'Bypass' : status);
  pdk.response.setHeader('X-Cache-Key', key);
  if (entry !== null) pdk.ctx.plugin.entry = entry as unknown as Json;
}

export async function log(pdk: Pdk, config: Config): Promise<void> {
  const entry = pdk.ctx.plugin.entry as Entry | undefined;
  const key = pdk.ctx.plugin.key as string | undefined;
  if (entry === undefined || key === undefined) return;
  await pdk.cache.set(key, entry as unknown as Json, { ttl: Math.max(config.storage_ttl ?? 0, entry.ttl) });
}
