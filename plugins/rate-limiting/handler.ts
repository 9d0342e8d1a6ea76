import type { CounterOptions, Pdk } from '../../pdk-bridge/types.ts';
import { kongError } from '../kong-error.ts';

/**
 * Kong's rate-limiting: at most `second`/`minute`/`hour`/`day` requests per fixed window,
 * counted per identifier (limit_by) and per route and service, as Kong's keys are.
 *
 * Counted as increment-then-check: every window's counter of the request goes up in one
 * counters.incrementMany call (one crossing, one store call, atomic in Redis), and the
 * request is refused when a count passes its limit. The limit is exact across workers and
 * nodes (Kong reads, then increments later, so bursts pass it); unlike Kong, a refused
 * request counts too, in every window.
 */
type Config = {
  second?: number;
  minute?: number;
  hour?: number;
  day?: number;
  limit_by: 'consumer' | 'credential' | 'ip' | 'header' | 'path' | 'service';
  header_name?: string;
  path?: string;
  policy: 'local' | 'redis' | 'cluster';
  fault_tolerant: boolean;
  hide_client_headers: boolean;
  error_code: number;
  error_message: string;
};

export const name = 'rate-limiting';
export const version = '1.0.0';
export const priority = 910; // Kong's

type Window = { seconds: number; limit: number; limitHeader: string; remainingHeader: string };
type Compiled = { windows: Window[]; items: { key: string; windowSeconds: number }[]; opts: CounterOptions };

const WINDOWS = [
  ['second', 1, 'Second'],
  ['minute', 60, 'Minute'],
  ['hour', 3600, 'Hour'],
  ['day', 86400, 'Day'],
] as const;

/** Identifiers longer than this are counted by their SHA-256 (a counter key is at most 512 characters). */
const MAX_ID = 256;

// The PDK has no configure hook: each config object (frozen, one per instance and isolate)
// is compiled on its first request and kept here.
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c !== undefined) return c;
  const windows: Window[] = [];
  for (const [field, seconds, label] of WINDOWS) {
    const limit = config[field];
    if (limit !== undefined) windows.push({ seconds, limit, limitHeader: `X-RateLimit-Limit-${label}`, remainingHeader: `X-RateLimit-Remaining-${label}` });
  }
  c = { windows, items: windows.map((w) => ({ key: '', windowSeconds: w.seconds })), opts: { cluster: config.policy !== 'local' } };
  compiled.set(config, c);
  return c;
}

/** Kong's identifier: the limit_by value, or the client's forwarded IP when there is none. */
function identifier(pdk: Pdk, config: Config): string {
  switch (config.limit_by) {
    case 'consumer': {
      const id = pdk.client.getConsumer()?.id ?? pdk.client.getCredential()?.id;
      if (id !== undefined) return id;
      break;
    }
    case 'credential': {
      const c = pdk.client.getCredential();
      if (c !== null) return c.id;
      break;
    }
    case 'header': {
      const h = pdk.request.getHeader(config.header_name!);
      const v = Array.isArray(h) ? h[0] : h;
      if (v !== undefined) return v;
      break;
    }
    case 'path': {
      const p = pdk.request.getPath();
      if (p === config.path) return p;
      break;
    }
    case 'service':
      return pdk.router.getService().id;
  }
  return pdk.client.getForwardedIp();
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const c = compile(config);
  let id = identifier(pdk, config);
  // A huge header value costs one more crossing, not a refused key.
  if (id.length > MAX_ID) id = `sha256:${await pdk.crypto.digest('sha256', id, 'base64url')}`;
  const key = `${pdk.router.getRoute().id}:${pdk.router.getService().id}:${config.limit_by}:${id}`;
  // The call copies its items at once: the compiled list is reused, not shared across requests.
  for (const it of c.items) it.key = key;
  let counts: number[];
  try {
    counts = await pdk.counters.incrementMany(c.items, c.opts);
  } catch (err) {
    if (!config.fault_tolerant) kongError(pdk, 500, 'An unexpected error occurred');
    pdk.log.error('rate-limiting: failed to get usage:', String((err as Error)?.message ?? err));
    return;
  }
  const now = Date.now() / 1000;
  let stopped = false;
  let best: Window | null = null;
  let bestRemaining = 0;
  const headers: Record<string, string> = {};
  for (let i = 0; i < c.windows.length; i++) {
    const w = c.windows[i];
    if (counts[i] > w.limit) stopped = true;
    const remaining = Math.max(0, Math.floor(w.limit - counts[i]));
    // Kong's RateLimit-* name the window with the fewest left (the longer one of a tie).
    if (best === null || remaining < bestRemaining || (remaining === bestRemaining && w.seconds > best.seconds)) {
      best = w;
      bestRemaining = remaining;
    }
    headers[w.limitHeader] = String(w.limit);
    headers[w.remainingHeader] = String(remaining);
  }
  const reset = String(Math.max(1, Math.ceil(best!.seconds - (now % best!.seconds))));
  // Kong sends no Retry-After either when the headers are hidden.
  if (config.hide_client_headers) {
    if (stopped) kongError(pdk, config.error_code, config.error_message);
    return;
  }
  headers['RateLimit-Limit'] = String(best!.limit);
  headers['RateLimit-Remaining'] = String(bestRemaining);
  headers['RateLimit-Reset'] = reset;
  if (stopped) {
    headers['Retry-After'] = reset;
    kongError(pdk, config.error_code, config.error_message, headers);
  }
  pdk.response.setHeaders(headers);
}
