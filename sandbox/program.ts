import type { BreakerConfig } from './breaker.ts';

/**
 * What a tenant's isolate is loaded with, produced by config compilation
 * (core/config/compile.ts) and consumed by the sandbox. Plain data only.
 */
export type PluginBundle = {
  /** Bundled plugin name (the module's `name` export). */
  readonly name: string;
  readonly version: string;
  /** Script whose completion value is the plugin module's exports. */
  readonly code: string;
  /** Where it came from, for errors and logs. */
  readonly source: string;
  /** Every file esbuild bundled into it, the entry included (what --watch watches). */
  readonly inputs: readonly string[];
};

export type InstanceSpec = {
  /** Index into `TenantProgram.plugins`. */
  readonly plugin: number;
  /** Plugin name, for logs and metrics. */
  readonly name: string;
  /** Stable id of the instance: `tenant/plugin@scope`. */
  readonly id: string;
  readonly config: unknown;
  readonly cpuMs: number;
  /** Time the instance may spend waiting on async PDK calls in one phase of one request, in ms. */
  readonly wallMs: number;
  /** Outbound hosts the plugin declares (capabilities.http); absent: the tenant's whole allowlist. */
  readonly httpHosts?: readonly string[] | null;
  readonly failOpen: boolean;
  /** Instance id plus a hash of its plugin's code: what quarantine remembers. */
  readonly quarantineKey: string;
};

/** Per chain: phase bit -> instance indexes in run order. A phase with no handler is absent. */
export type ChainSpec = Readonly<Record<number, readonly number[]>>;

/**
 * Where authenticating a consumer leads, for the phase it happens in: `chains[j]`, j being
 * how many of `at` (instance ranks, ascending) are at or before the authenticating
 * instance's rank. Each `at` is where a plugin that the consumer configures differently
 * has already run (or been passed): it keeps the config it had, so one plugin never runs
 * with two configs in one request.
 */
export type ConsumerSwitch = { readonly at: readonly number[]; readonly chains: readonly number[] };

/**
 * A route's chains when consumer-scoped instances apply to it: the base chain, and per
 * consumer id and phase bit (rewrite, access) where authenticating that consumer leads (a
 * consumer not listed runs the base chain).
 */
export type ChainFamily = {
  readonly base: number;
  readonly consumers: Readonly<Record<string, Readonly<Record<number, ConsumerSwitch>>>>;
};

export type TenantProgram = {
  readonly tenant: string;
  readonly memoryMb: number;
  readonly plugins: readonly PluginBundle[];
  readonly instances: readonly InstanceSpec[];
  readonly chains: readonly ChainSpec[];
  /** Consumer variants (core/config/chains.ts); chainFamily: chain id -> family index, for the chains of a family. */
  readonly families: readonly ChainFamily[];
  readonly chainFamily: Readonly<Record<number, number>>;
  /** Instance index -> its position in run order (priority, then declaration): where a switched chain resumes. */
  readonly ranks: readonly number[];
  readonly breaker: BreakerConfig;
  /** The tenant's share of a worker's CPU under contention (cgroup's cpu.weight). */
  readonly cpuWeight: number;
  /** Hard cap: sandbox milliseconds per second, or null for none. */
  readonly cpuMaxMs: number | null;
  /** Outbound hosts the operator allows the tenant's plugins (tenants[].http.allow): "name" or "name:port". */
  readonly httpAllow?: readonly string[];
  /** Content hash: an unchanged program keeps its isolate across reloads. */
  readonly key: string;
};
