import { normalizeHost, type Routable } from './router.ts';

/**
 * Which tenant owns a request's host, for a request that matched no route as received: its
 * tenant's rewrite may still send it to one of the tenant's routes (core/rewrite-first.ts).
 * The host's key is the exact host if some route lists it, else the most specific `*.suffix`
 * wildcard that covers it, else "any host" (routes without hosts). The key names a tenant
 * only when exactly one tenant has routes on it; a key shared by tenants names none (no
 * rewrite runs: 404), as does a tenant without rewrite handlers. Built once per snapshot,
 * only when some tenant has a rewrite stage.
 */
export class TenantHosts<S> {
  readonly #exact = new Map<string, S | null>();
  /** [".example.com", stage], longest suffix first. */
  readonly #wildcards: [string, S | null][] = [];
  readonly #any: S | null;

  /** `stageOf(tenant)`: the tenant's rewrite stage, or null when it has none. */
  constructor(routes: readonly (Routable & { readonly tenant: string })[], stageOf: (tenant: string) => S | null) {
    const exact = new Map<string, Set<string>>();
    const wild = new Map<string, Set<string>>();
    const any = new Set<string>();
    const claim = (m: Map<string, Set<string>>, key: string, tenant: string) => {
      let set = m.get(key);
      if (set === undefined) m.set(key, (set = new Set()));
      set.add(tenant);
    };
    for (const r of routes) {
      if (r.hosts === null) any.add(r.tenant);
      else for (const h of r.hosts) (h.startsWith('*.') ? claim(wild, h.slice(1), r.tenant) : claim(exact, h, r.tenant));
    }
    const owner = (tenants: ReadonlySet<string>) => (tenants.size === 1 ? stageOf([...tenants][0]) : null);
    for (const [host, tenants] of exact) this.#exact.set(host, owner(tenants));
    this.#wildcards = [...wild].map(([suffix, tenants]): [string, S | null] => [suffix, owner(tenants)]).sort((a, b) => b[0].length - a[0].length);
    this.#any = owner(any);
  }

  /** The stage of the tenant owning `rawHost` (a Host header), or null. */
  owner(rawHost: string | undefined): S | null {
    if (rawHost === undefined || rawHost === '') return this.#any;
    const host = normalizeHost(rawHost);
    const exact = this.#exact.get(host);
    if (exact !== undefined || this.#exact.has(host)) return exact ?? null;
    for (const [suffix, stage] of this.#wildcards) if (host.length > suffix.length && host.endsWith(suffix)) return stage;
    return this.#any;
  }
}
