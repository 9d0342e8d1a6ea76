import { EARLY_HEADER_FILTER, HANDLER_PHASE, PHASE, PHASE_NAME } from '../../pdk-bridge/phases.ts';
import type { ChainFamily, ChainSpec, ConsumerSwitch } from '../../sandbox/program.ts';
import type { PluginInput, RouteInput } from './types.ts';

/** A ConsumerSwitch as the host uses it: each chain with the phases it has handlers for. */
export type HostSwitch = { readonly at: readonly number[]; readonly chains: readonly { readonly chainId: number; readonly phases: number }[] };
/**
 * Where authenticating a consumer leads, by the phase bit it happens in: access only. A
 * route's chains have no rewrite phase (only tenant-wide instances run in rewrite, before
 * the route is known: ChainBuilder.tenantRewrite); a consumer authenticated in rewrite
 * starts access on the chain authenticating it before access leads to (`chains[0]`).
 */
export type ConsumerChain = Readonly<Record<number, HostSwitch>>;

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
  /** The plugin's headerFilter reads something of the response (its `readsResponse`, default true). */
  readonly readsResponse: boolean;
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
 * the route names, the chains that authenticating it leads to are built too (see
 * ConsumerSwitch), and the route's family maps the consumer's id to them. The dispatcher
 * switches when a plugin authenticates that consumer: no request ever scans for plugins.
 */
export class ChainBuilder {
  readonly chains: ChainSpec[] = [];
  readonly families: ChainFamily[] = [];
  /** Chain id -> index into families, for chains that belong to one. */
  readonly chainFamily: Record<number, number> = {};
  readonly #candidates: readonly Candidate[];
  readonly #rank = new Map<number, number>();
  readonly #plain = new Map<string, number>();
  readonly #familyKeys = new Map<string, { base: number; consumers: ReadonlyMap<string, ConsumerChain> }>();

  constructor(candidates: readonly Candidate[]) {
    this.#candidates = candidates;
    [...candidates].sort((a, b) => b.priority - a.priority || a.index - b.index).forEach((c, k) => this.#rank.set(c.index, k));
  }

  /** The rank of every instance in run order: priority (higher first), then declaration. The dispatcher resumes a switched chain after the running rank. */
  ranks(count: number): number[] {
    const ranks = new Array<number>(count).fill(-1);
    for (const [index, rank] of this.#rank) ranks[index] = rank;
    return ranks;
  }

  /** The chain of `route` (-1: none), its phases (union over its variants), and consumer id -> where authenticating it leads (null: no variant). */
  route(route: RouteInput): { chainId: number; phases: number; chainPhases: number; consumerChains: ReadonlyMap<string, ConsumerChain> | null } {
    const applies = this.#candidates.filter((c) =>
      (c.input.route === undefined || c.input.route === route.name) && (c.input.service === undefined || c.input.service === route.service));
    const baseByName = pick(applies.filter((c) => c.consumerId === undefined));
    const baseChain = chainOf(this.#ordered(baseByName.values()));
    const consumers = [...new Set(applies.flatMap((c) => (c.consumerId === undefined ? [] : [c.consumerId])))];
    // consumer id -> phase bit -> { at, chains (content) }
    const plans = new Map<string, Map<number, { at: number[]; chains: Built[] }>>();
    for (const id of consumers) {
      const mine = pick(applies.filter((c) => c.consumerId === undefined || c.consumerId === id));
      const differ = [...mine.keys()].filter((n) => mine.get(n) !== baseByName.get(n));
      if (differ.length === 0) continue;
      plans.set(id, new Map(AUTH_PHASES.map((ph) => [ph, this.#switchPlan(differ, baseByName, mine)] as const)));
    }
    if (plans.size === 0) {
      if (baseChain.phases === 0) return { chainId: -1, phases: 0, chainPhases: 0, consumerChains: null };
      let id = this.#plain.get(baseChain.key);
      if (id === undefined) this.#plain.set(baseChain.key, (id = this.#add(baseChain.chain)));
      return { chainId: id, phases: baseChain.phases, chainPhases: baseChain.phases, consumerChains: null };
    }
    let phases = baseChain.phases;
    for (const plan of plans.values()) for (const sw of plan.values()) for (const c of sw.chains) phases |= c.phases;
    const familyKey = JSON.stringify([baseChain.key, [...plans].map(([id, plan]) => [id, [...plan].map(([ph, sw]) => [ph, sw.at, sw.chains.map((c) => c.key)])])]);
    let family = this.#familyKeys.get(familyKey);
    if (family === undefined) {
      const f = this.families.length;
      const ids = new Map<string, number>(); // content key -> chain id, within the family
      const idOf = (b: Built) => {
        let id = ids.get(b.key);
        if (id === undefined) ids.set(b.key, (id = this.#add(b.chain, f)));
        return id;
      };
      const baseId = idOf(baseChain);
      const map = new Map<string, ConsumerChain>();
      const byConsumer: Record<string, Record<number, ConsumerSwitch>> = {};
      for (const [id, plan] of plans) {
        const host: Record<number, HostSwitch> = {};
        const runtime: Record<number, ConsumerSwitch> = {};
        for (const [ph, sw] of plan) {
          const chainIds = sw.chains.map(idOf);
          runtime[ph] = { at: sw.at, chains: chainIds };
          host[ph] = { at: sw.at, chains: sw.chains.map((c, j) => ({ chainId: chainIds[j], phases: c.phases })) };
        }
        byConsumer[id] = runtime;
        map.set(id, host);
      }
      this.families.push({ base: baseId, consumers: byConsumer });
      family = { base: baseId, consumers: map };
      this.#familyKeys.set(familyKey, family);
    }
    return { chainId: family.base, phases, chainPhases: baseChain.phases, consumerChains: family.consumers };
  }

  /**
   * The chains authenticating a consumer in access leads to. A plugin name the
   * consumer configures differently (`differ`) keeps its route config if it already ran in
   * this request: a tenant-wide instance with a rewrite handler (it ran in rewrite), and
   * those ranked at or before the authenticating instance (Kong resolves a plugin's config
   * where the access phase passes it). A route- or service-scoped rewrite handler never ran.
   */
  #switchPlan(differ: readonly string[], base: ReadonlyMap<string, Candidate>, mine: ReadonlyMap<string, Candidate>): { at: number[]; chains: Built[] } {
    const always: string[] = [];
    const points: { name: string; rank: number }[] = [];
    for (const n of differ) {
      const b = base.get(n);
      if (b === undefined) continue; // only the consumer's instance exists: nothing ran
      if (ranInRewrite(b)) always.push(n);
      else points.push({ name: n, rank: this.#rank.get(b.index)! });
    }
    points.sort((a, b) => a.rank - b.rank);
    const chains: Built[] = [];
    for (let j = 0; j <= points.length; j++) {
      const kept = new Set([...always, ...points.slice(0, j).map((p) => p.name)]);
      const names = new Set([...base.keys(), ...mine.keys()]);
      chains.push(chainOf(this.#ordered([...names].map((n) => (kept.has(n) ? base.get(n) : mine.get(n))!))));
    }
    return { at: points.map((p) => p.rank), chains };
  }

  /**
   * The tenant's rewrite chain (-1: none) and its phases: Kong runs rewrite before routing,
   * so only tenant-wide instances (no route, service or consumer) with a rewrite handler run
   * in it, one per plugin name (the first declared), in priority order. A scoped instance's
   * rewrite handler never runs (Kong's rule); its other handlers do. The chain's other
   * phases, of the tenant-wide instances too, are for requests answered before a route was
   * chosen: headerFilter and bodyFilter on a rewrite exit() (Kong runs them on it), log.
   */
  tenantRewrite(): { chainId: number; phases: number } {
    const rewriters = pick(this.#candidates.filter(ranInRewrite));
    if (rewriters.size === 0) return { chainId: -1, phases: 0 };
    const chain: Record<number, number[]> = { [PHASE.REWRITE]: this.#ordered(rewriters.values()).map((c) => c.index) };
    let phases: number = PHASE.REWRITE;
    for (const phase of AFTER_REWRITE) {
      const name = PHASE_NAME[phase];
      const list = pick(this.#candidates.filter((c) => tenantWide(c) && c.handlers.includes(name)));
      if (list.size === 0) continue;
      chain[phase] = this.#ordered(list.values()).map((c) => c.index);
      phases |= phase;
    }
    return { chainId: this.#add(chain), phases };
  }

  #ordered(list: Iterable<Candidate>): Candidate[] {
    return [...list].sort((a, b) => this.#rank.get(a.index)! - this.#rank.get(b.index)!);
  }

  #add(chain: ChainSpec, family?: number): number {
    const id = this.chains.length;
    this.chains.push(chain);
    if (family !== undefined) this.chainFamily[id] = family;
    return id;
  }
}

/** Which of `at` (ascending ranks) are at or before `rank`: the index into a switch's chains. */
export function switchIndex(at: readonly number[], rank: number): number {
  let j = 0;
  while (j < at.length && at[j] <= rank) j++;
  return j;
}

type Built = { chain: ChainSpec; phases: number; key: string };
/** The phases a tenant's rewrite stage has besides rewrite: those of a response answered before routing. */
const AFTER_REWRITE = [PHASE.HEADER_FILTER, PHASE.BODY_FILTER, PHASE.LOG] as const;
const AUTH_PHASES = [PHASE.ACCESS] as const;

function tenantWide(c: Candidate): boolean {
  const p = c.input;
  return p.route === undefined && p.service === undefined && p.consumer === undefined;
}

/** A tenant-wide instance with a rewrite handler: the only kind whose rewrite runs (in the tenant's rewrite chain). */
function ranInRewrite(c: Candidate): boolean {
  return tenantWide(c) && c.handlers.includes('rewrite');
}

/** Per plugin name, the instance of highest precedence (the first declared among equals). */
function pick(list: readonly Candidate[]): Map<string, Candidate> {
  const byName = new Map<string, Candidate>();
  for (const c of list) {
    const prev = byName.get(c.name);
    if (prev === undefined || precedence(c.input) > precedence(prev.input)) byName.set(c.name, c);
  }
  return byName;
}

/** A route's chain: every handler but rewrite (that runs in the tenant's rewrite chain, before routing). */
function chainOf(ordered: readonly Candidate[]): Built {
  const chain: Record<number, number[]> = {};
  let phases = 0;
  let readsResponse = false;
  for (const c of ordered) {
    for (const h of c.handlers) {
      const bit = HANDLER_PHASE[h];
      if (bit === PHASE.REWRITE) continue;
      (chain[bit] ??= []).push(c.index);
      phases |= bit;
      if (bit === PHASE.HEADER_FILTER && c.readsResponse) readsResponse = true;
    }
  }
  if (isEarly(phases, readsResponse)) phases |= EARLY_HEADER_FILTER;
  return { chain, phases, key: JSON.stringify(chain) };
}

/**
 * An "early" chain runs its headerFilter inside the access crossing (one crossing per
 * request, pdk-bridge/host/phase-call.ts): it has access and headerFilter handlers, none
 * of its headerFilter plugins reads the response (`readsResponse: false`), and it has no
 * response handler (ctx written there could be read by headerFilter, and the response is
 * buffered for it anyway).
 */
function isEarly(phases: number, readsResponse: boolean): boolean {
  const needs = PHASE.ACCESS | PHASE.HEADER_FILTER;
  return (phases & needs) === needs && (phases & PHASE.RESPONSE) === 0 && !readsResponse;
}
