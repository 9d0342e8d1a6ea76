import { HANDLER_PHASE } from '../../pdk-bridge/host/phases.ts';
import type { ChainFamily, ChainSpec } from '../../sandbox/program.ts';
import type { PluginInput, RouteInput } from './types.ts';

/** The variant chain of a consumer, and the phases it has handlers for. */
export type ConsumerChain = { readonly chainId: number; readonly phases: number };

/** A loaded plugin instance, before chains are built. */
export type Candidate = {
  readonly name: string;
  /** Index into the tenant program's instances. */
  readonly index: number;
  readonly input: PluginInput;
  /** The consumer id `input.consumer` names, resolved (undefined: not consumer-scoped). */
  readonly consumerId: string | undefined;
  readonly priority: number;
  readonly handlers: readonly string[];
};

/**
 * Kong's precedence, most specific first: route+service+consumer, route+consumer,
 * service+consumer, route+service, consumer, route, service, tenant.
 */
export function precedence(p: Pick<PluginInput, 'route' | 'service' | 'consumer'>): number {
  const r = p.route !== undefined, s = p.service !== undefined, c = p.consumer !== undefined;
  if (c) return r && s ? 7 : r ? 6 : s ? 5 : 3;
  return r && s ? 4 : r ? 2 : s ? 1 : 0;
}

/** The scope part of an instance id: `tenant`, or its parts joined by "+" (`route:a+consumer:bob`). */
export function scopeName(p: Pick<PluginInput, 'route' | 'service' | 'consumer'>): string {
  const parts: string[] = [];
  if (p.route !== undefined) parts.push(`route:${p.route}`);
  if (p.service !== undefined) parts.push(`service:${p.service}`);
  if (p.consumer !== undefined) parts.push(`consumer:${p.consumer}`);
  return parts.length === 0 ? 'tenant' : parts.join('+');
}

/**
 * Builds the chains of a tenant's routes. Per route and plugin name exactly one instance
 * applies, the most specific by `precedence` (the first declared among equals). Everything
 * but the consumer is known now; for each consumer that some consumer-scoped instance of
 * the route names, a variant chain is built too, and the route's family maps the
 * consumer's id to it. The dispatcher switches to the variant when a plugin authenticates
 * that consumer: no request ever scans for its plugins.
 */
export class ChainBuilder {
  readonly chains: ChainSpec[] = [];
  readonly families: ChainFamily[] = [];
  /** Chain id -> index into families, for chains that belong to one. */
  readonly chainFamily: Record<number, number> = {};
  readonly #candidates: readonly Candidate[];
  readonly #plain = new Map<string, number>();
  readonly #familyKeys = new Map<string, { base: number; consumers: ReadonlyMap<string, ConsumerChain> }>();

  constructor(candidates: readonly Candidate[]) {
    this.#candidates = candidates;
  }

  /** The rank of every instance in run order: priority (higher first), then declaration. The dispatcher resumes a switched chain after the running rank. */
  ranks(count: number): number[] {
    const order = [...this.#candidates].sort((a, b) => b.priority - a.priority || a.index - b.index);
    const ranks = new Array<number>(count).fill(-1);
    order.forEach((c, k) => (ranks[c.index] = k));
    return ranks;
  }

  /** The chain of `route` (-1: none), its phases (union over its variants), and consumer id -> variant chain id (null: no variant). */
  route(route: RouteInput): { chainId: number; phases: number; chainPhases: number; consumerChains: ReadonlyMap<string, ConsumerChain> | null } {
    const applies = this.#candidates.filter((c) =>
      (c.input.route === undefined || c.input.route === route.name) && (c.input.service === undefined || c.input.service === route.service));
    const base = pick(applies.filter((c) => c.consumerId === undefined));
    const baseChain = chainOf(base);
    const consumers = [...new Set(applies.flatMap((c) => (c.consumerId === undefined ? [] : [c.consumerId])))];
    const variants = new Map<string, { chain: ChainSpec; phases: number; key: string }>();
    for (const id of consumers) {
      const v = chainOf(pick(applies.filter((c) => c.consumerId === undefined || c.consumerId === id)));
      if (v.key !== baseChain.key) variants.set(id, v);
    }
    if (variants.size === 0) {
      if (baseChain.phases === 0) return { chainId: -1, phases: 0, chainPhases: 0, consumerChains: null };
      let id = this.#plain.get(baseChain.key);
      if (id === undefined) this.#plain.set(baseChain.key, (id = this.#add(baseChain.chain)));
      return { chainId: id, phases: baseChain.phases, chainPhases: baseChain.phases, consumerChains: null };
    }
    let phases = baseChain.phases;
    for (const v of variants.values()) phases |= v.phases;
    const familyKey = JSON.stringify([baseChain.key, [...variants].map(([id, v]) => [id, v.key])]);
    let family = this.#familyKeys.get(familyKey);
    if (family === undefined) {
      const f = this.families.length;
      const baseId = this.#add(baseChain.chain, f);
      const map = new Map<string, ConsumerChain>();
      const byConsumer: Record<string, number> = {};
      for (const [id, v] of variants) {
        const vid = this.#add(v.chain, f);
        map.set(id, { chainId: vid, phases: v.phases });
        byConsumer[id] = vid;
      }
      this.families.push({ base: baseId, consumers: byConsumer });
      family = { base: baseId, consumers: map };
      this.#familyKeys.set(familyKey, family);
    }
    return { chainId: family.base, phases, chainPhases: baseChain.phases, consumerChains: family.consumers };
  }

  #add(chain: ChainSpec, family?: number): number {
    const id = this.chains.length;
    this.chains.push(chain);
    if (family !== undefined) this.chainFamily[id] = family;
    return id;
  }
}

/** Per plugin name, the instance of highest precedence (the first declared among equals). */
function pick(list: readonly Candidate[]): Candidate[] {
  const byName = new Map<string, Candidate>();
  for (const c of list) {
    const prev = byName.get(c.name);
    if (prev === undefined || precedence(c.input) > precedence(prev.input)) byName.set(c.name, c);
  }
  return [...byName.values()].sort((a, b) => b.priority - a.priority || a.index - b.index);
}

function chainOf(ordered: readonly Candidate[]): { chain: ChainSpec; phases: number; key: string } {
  const chain: Record<number, number[]> = {};
  let phases = 0;
  for (const c of ordered) {
    for (const h of c.handlers) {
      const bit = HANDLER_PHASE[h];
      (chain[bit] ??= []).push(c.index);
      phases |= bit;
    }
  }
  return { chain, phases, key: JSON.stringify(chain) };
}
