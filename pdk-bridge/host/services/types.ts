import type { ConsumerIndex } from '../../../core/consumers/index.ts';
import type { CounterStores } from '../../../core/state/index.ts';
import type { TenantCache } from './cache.ts';

/** What a service knows of the tenant it serves: made once per tenant program, not per call. */
export type TenantServices = {
  readonly tenant: string;
  readonly cache: TenantCache;
  /** The node's counters, and the cluster's (Redis) on a cluster node. */
  readonly counters: CounterStores;
  /** Outbound hosts per instance: the operator's allowlist, intersected with what the plugin declares. */
  readonly httpAllow: readonly (ReadonlySet<string>)[];
  /** The operator's allowlist entries as written (lowercase): what names a loopback or link-local address explicitly. */
  readonly httpExplicit: ReadonlySet<string>;
  /** Outbound connections of this tenant (pdk.http), checking the addresses names resolve to. */
  readonly httpAgent: import("undici").Dispatcher;
};

/** One async call being served. */
export type CallContext = {
  readonly services: TenantServices;
  readonly instance: number;
  /** performance.now() at which the calling instance's wall time (wallMs) runs out. */
  readonly deadline: number;
  /** Outbound http calls made so far in this phase (ASYNC_CAPS.maxHttpCalls). */
  readonly http: { n: number };
  /**
   * The consumers and credentials of the config the request was routed under (the route's
   * index, so a reload is seen by the next request and never half-way through one); absent
   * for calls of no request.
   */
  readonly consumers?: ConsumerIndex;
  /** client.verifyPassword checks made so far in this phase (ASYNC_CAPS.maxPasswordChecks). */
  readonly passwords?: { n: number };
};

/**
 * One method of a service: the phases it is allowed in, and what it does with the call's
 * arguments (untrusted data parsed from the isolate's JSON: check everything). Returns
 * the result as JSON text; throws ServiceError for an error the plugin sees.
 */
export type ServiceMethod = {
  readonly phases: number;
  run(args: readonly unknown[], cc: CallContext): string | Promise<string>;
};

export type Service = { readonly name: string; readonly methods: Readonly<Record<string, ServiceMethod>> };

/** An error the calling plugin gets as the rejection of its promise (its message only). */
export class ServiceError extends Error {}

export function argString(v: unknown, what: string, cap: number): string {
  if (typeof v !== 'string') throw new ServiceError(`${what} must be a string`);
  if (v.length > cap) throw new ServiceError(`${what} of ${v.length} characters exceeds ${cap}`);
  return v;
}

export function argNumber(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ServiceError(`${what} must be a number from ${min} to ${max}`);
  return v;
}
