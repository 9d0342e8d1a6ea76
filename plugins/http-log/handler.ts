import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's http-log: the log entry of each request (Kong's basic serializer), queued and
 * sent in JSON batches to `http_endpoint` through pdk.http (the tenant's allowlist).
 *
 * The queue is module state of the plugin in its isolate: per tenant, per worker, per
 * distinct config (kept across reloads that keep the config). There are no timers in a
 * plugin, so the log phase of requests is what sends: a batch goes when it is full, or with
 * the first request logged after `max_coalescing_delay` (quiet traffic: a batch waits for
 * the next request). The log phase runs after the response is sent: a slow or failing
 * endpoint never slows the client. One send at a time per queue; a failed batch stays at
 * the head and is retried, backing off, by later requests, then dropped. What waits is lost
 * when the isolate is replaced (a new plugin version, a crash).
 */
type Config = {
  http_endpoint: string;
  method: 'POST' | 'PUT' | 'PATCH';
  content_type: string;
  timeout: number;
  keepalive: number;
  retry_count: number;
  headers?: Readonly<Record<string, string>>;
  queue: { max_batch_size: number; max_coalescing_delay: number; max_entries: number; max_bytes: number | null; initial_retry_delay: number; max_retry_delay: number; max_retry_time: number; concurrency_limit: number };
};

type Queue = {
  entries: string[];
  /** Characters of the entries waiting (queue.max_bytes). */
  chars: number;
  /** Date.now() of the head batch's first failure, 0 while it has not failed (queue.max_retry_time). */
  failingSince: number;
  /** Date.now() when the oldest entry waiting came (roughly: the time of the last send). */
  since: number;
  sending: boolean;
  attempts: number;
  retryAt: number;
  dropped: number;
  failedBatches: number;
};

export const name = 'http-log';
export const version = '1.0.0';
export const priority = 12; // Kong's

/** A send must end within the plugin's default wall time per phase (5000 ms), or it is a plugin fault. */
const MAX_TIMEOUT_MS = 4000;
/** Characters of one batch's body, at most: an async call's arguments are capped at 1 MB, escaping included. */
const MAX_BATCH_CHARS = 400_000;

const byConfig = new WeakMap<object, Queue>();
const byText = new Map<string, Queue>();

function queueOf(config: Config): Queue {
  let q = byConfig.get(config);
  if (q !== undefined) return q;
  // Once per config object: a reload that keeps this config keeps its queue.
  const text = JSON.stringify(config);
  q = byText.get(text);
  if (q === undefined) byText.set(text, (q = { entries: [], chars: 0, failingSince: 0, since: 0, sending: false, attempts: 0, retryAt: 0, dropped: 0, failedBatches: 0 }));
  byConfig.set(config, q);
  return q;
}

/** The head of the queue that fits one batch (an entry too large alone is dropped). */
function takeBatch(q: Queue, max: number): string[] {
  const out: string[] = [];
  let chars = 2;
  for (const e of q.entries) {
    if (out.length === max || chars + e.length + 1 > MAX_BATCH_CHARS) break;
    out.push(e);
    chars += e.length + 1;
  }
  return out;
}

/** Takes the head batch off the queue (sent, or given up). */
function drop(q: Queue, batch: readonly string[]): void {
  q.entries.splice(0, batch.length);
  for (const e of batch) q.chars -= e.length;
  q.attempts = 0;
  q.failingSince = 0;
}

async function send(pdk: Pdk, config: Config, q: Queue, now: number): Promise<void> {
  const batch = takeBatch(q, config.queue.max_batch_size);
  if (batch.length === 0) {
    q.chars -= q.entries.shift()!.length;
    q.dropped++;
    pdk.log.warn(`http-log: an entry of more than ${MAX_BATCH_CHARS} characters was dropped`);
    return;
  }
  const body = config.queue.max_batch_size === 1 ? batch[0] : `[${batch.join(',')}]`;
  q.sending = true;
  let error: string | null = null;
  try {
    const res = await pdk.http.request(config.http_endpoint, {
      method: config.method,
      headers: { ...config.headers, 'content-type': config.content_type },
      body,
      timeoutMs: Math.min(config.timeout, MAX_TIMEOUT_MS),
    });
    if (res.status >= 400) error = `status ${res.status}`;
  } catch (err) {
    error = String((err as Error)?.message ?? err);
  } finally {
    q.sending = false;
  }
  if (error === null) {
    drop(q, batch);
    q.since = Date.now();
    return;
  }
  q.attempts++;
  if (q.failingSince === 0) q.failingSince = now;
  if (q.attempts > config.retry_count || now - q.failingSince >= config.queue.max_retry_time * 1000) {
    const tries = q.attempts;
    drop(q, batch);
    q.failedBatches++;
    pdk.log.error(`http-log: a batch of ${batch.length} entries to ${config.http_endpoint} was dropped after ${tries} tries (${q.failedBatches} so far): ${error}`);
    return;
  }
  const delay = Math.min(config.queue.initial_retry_delay * 2 ** (q.attempts - 1), config.queue.max_retry_delay);
  q.retryAt = now + delay * 1000;
  pdk.log.warn(`http-log: sending to ${config.http_endpoint} failed (try ${q.attempts}), retrying in ${delay} s: ${error}`);
}

export async function log(pdk: Pdk, config: Config): Promise<void> {
  const q = queueOf(config);
  const now = Date.now();
  const entry = q.entries.length >= config.queue.max_entries ? null : JSON.stringify(pdk.log.serialize());
  if (entry === null || (config.queue.max_bytes !== null && q.chars + entry.length > config.queue.max_bytes)) {
    q.dropped++;
    // The first drop, then one line per 1000: a flood must not flood the gateway's log too.
    if (q.dropped % 1000 === 1) pdk.log.warn(`http-log: queue full (max_entries ${config.queue.max_entries}, max_bytes ${config.queue.max_bytes}): ${q.dropped} entries dropped so far`);
  } else {
    if (q.entries.length === 0) q.since = now;
    q.entries.push(entry);
    q.chars += entry.length;
  }
  if (q.sending || now < q.retryAt || q.entries.length === 0) return;
  if (q.entries.length >= config.queue.max_batch_size || now - q.since >= config.queue.max_coalescing_delay * 1000) await send(pdk, config, q, now);
}
