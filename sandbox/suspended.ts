import { OUTPUT_CAPS } from './limits.ts';
import type { RunResult } from './run-result.ts';

/** One async PDK call a chain made (pdk-bridge/runtime/async.ts): untrusted until the service checks its args. */
export type AsyncRequest = {
  readonly id: number;
  /** The instance that made it. */
  readonly instance: number;
  readonly service: string;
  readonly method: string;
  readonly args: readonly unknown[];
};

/** The host's answer to one request: ok (the result as JSON), an error message, or the caller's wall time ran out. */
export const ANSWER_OK = 0;
export const ANSWER_ERROR = 1;
export const ANSWER_TIMEOUT = 2;
export type Answer = readonly [id: number, kind: 0 | 1 | 2, text: string];

/**
 * A chain that waits on async PDK calls: its frame stays in the isolate until the host
 * resumes it with the answers (TenantSandbox.resume). `isolate` is the isolate it waits in:
 * if that one is gone by then, so is the chain.
 */
export class Suspended {
  readonly frame: number;
  readonly requests: readonly AsyncRequest[];
  readonly isolate: object;
  readonly chainId: number;
  readonly phase: number;
  /** A log batch: the index of the waiting item and the results of those before it; else null. */
  readonly batch: { readonly index: number; readonly results: readonly RunResult[] } | null;

  constructor(frame: number, requests: readonly AsyncRequest[], isolate: object, chainId: number, phase: number, batch: Suspended['batch']) {
    this.frame = frame;
    this.requests = requests;
    this.isolate = isolate;
    this.chainId = chainId;
    this.phase = phase;
    this.batch = batch;
  }
}

/** Upper bound of the requests' JSON: every call's args at their cap, and room for the rest. */
const MAX_REQUESTS_CHARS = OUTPUT_CAPS.maxAsyncCalls * (OUTPUT_CAPS.maxAsyncArgBytes + 1024);

/** The requests' JSON as the runtime made it, checked for shape; a string says what is wrong. */
export function parseRequests(text: string, instances: number): AsyncRequest[] | string {
  if (text.length > MAX_REQUESTS_CHARS) return `async requests of ${text.length} characters exceed ${MAX_REQUESTS_CHARS}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'async requests are not JSON';
  }
  if (!Array.isArray(parsed) || parsed.length > OUTPUT_CAPS.maxAsyncCalls * 2) return 'async requests have the wrong shape';
  const out: AsyncRequest[] = [];
  for (const r of parsed as unknown[]) {
    if (!Array.isArray(r) || r.length !== 5) return 'an async request has the wrong shape';
    const [id, instance, service, method, args] = r as unknown[];
    if (!Number.isInteger(id) || !Number.isInteger(instance) || (instance as number) < -1 || (instance as number) >= instances) return 'an async request has the wrong shape';
    if (typeof service !== 'string' || typeof method !== 'string' || !Array.isArray(args)) return 'an async request has the wrong shape';
    out.push({ id: id as number, instance: instance as number, service, method, args });
  }
  return out;
}
