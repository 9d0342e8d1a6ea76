import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { CounterStores } from '../../../core/state/index.ts';
import { DEFAULT_CACHE, OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import type { TenantProgram } from '../../../sandbox/program.ts';
import { ANSWER_ERROR, ANSWER_OK, type Answer, type AsyncRequest } from '../../../sandbox/suspended.ts';
import { PHASE_NAME } from '../phases.ts';
import { cacheService, TenantCache } from './cache.ts';
import { consumersService } from './consumers.ts';
import { countersService } from './counters.ts';
import { cryptoService } from './crypto.ts';
import { httpService, outboundAgent } from './http.ts';
import { ServiceError, type CallContext, type Service, type ServiceMethod, type TenantServices } from './types.ts';

/** Every service an async PDK call can reach: service name -> method -> { phases, run }. */
export const SERVICES: readonly Service[] = [cacheService, consumersService, countersService, cryptoService, httpService];

const TABLE = new Map<string, ServiceMethod>();
for (const s of SERVICES) for (const [m, def] of Object.entries(s.methods)) TABLE.set(`${s.name}.${m}`, def);

export type ServicesConfig = { readonly cache: { readonly maxEntries: number; readonly maxBytes: number } };

/**
 * The host side of async PDK calls for one worker: per-tenant state (cache, outbound
 * agent, allowlists), the node's counters, and performing one request.
 */
export class HostServices {
  readonly #counters: CounterStores;
  readonly #log: Logger;
  #config: ServicesConfig;
  readonly #caches = new Map<string, TenantCache>();
  readonly #byProgram = new WeakMap<TenantProgram, TenantServices>();
  /** Outbound agents by tenant and allowlist: a reload that keeps them keeps the connections. */
  readonly #agents = new Map<string, Agent>();

  constructor(counters: CounterStores, log: Logger, config: ServicesConfig = { cache: DEFAULT_CACHE }) {
    this.#counters = counters;
    this.#log = log;
    this.#config = config;
  }

  get counters(): CounterStores {
    return this.#counters;
  }

  /** A reload may change the cache bounds: tenants get caches of the new size from then on. */
  configure(config: ServicesConfig): void {
    const c = this.#config.cache;
    if (c.maxEntries !== config.cache.maxEntries || c.maxBytes !== config.cache.maxBytes) this.#caches.clear();
    this.#config = config;
  }

  /** The services of a tenant program, made once per program (the cache outlives reloads). */
  forProgram(program: TenantProgram): TenantServices {
    let t = this.#byProgram.get(program);
    if (t !== undefined) return t;
    let cache = this.#caches.get(program.tenant);
    if (cache === undefined) this.#caches.set(program.tenant, (cache = new TenantCache(this.#config.cache.maxEntries, this.#config.cache.maxBytes)));
    const operator = new Set((program.httpAllow ?? []).map((h) => h.toLowerCase()));
    // "[::1]:8080" as the lookup reports it: "::1:8080"; "[::1]" as "::1".
    const explicit = new Set([...operator].map((h) => h.replace(/^\[(.*)\]/, '$1')));
    const httpAllow = program.instances.map((i) => (i.httpHosts === undefined || i.httpHosts === null ? operator : new Set(i.httpHosts.map((h) => h.toLowerCase()).filter((h) => operator.has(h)))));
    t = { tenant: program.tenant, cache, counters: this.#counters, httpAllow, httpExplicit: explicit, httpAgent: this.#agent(program.tenant, operator) };
    this.#byProgram.set(program, t);
    return t;
  }

  #agent(tenant: string, operator: ReadonlySet<string>): Agent {
    const key = `${tenant}\0${[...operator].sort().join(',')}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      // Addresses listed for some port: the agent's connect-time check does not know the port.
      this.#agents.set(key, (agent = outboundAgent(new Set([...operator].map((h) => h.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1'))))));
    }
    return agent;
  }

  /** Closes the outbound connections (the gateway stops). */
  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
    this.#agents.clear();
  }

  /** Performs one request; never rejects (a failure is an error answer). */
  async perform(req: AsyncRequest, phase: number, cc: CallContext): Promise<Answer> {
    const def = TABLE.get(`${req.service}.${req.method}`);
    if (def === undefined) return [req.id, ANSWER_ERROR, `unknown async call ${req.service}.${req.method}`.slice(0, 200)];
    if ((def.phases & phase) === 0) return [req.id, ANSWER_ERROR, `${req.service}.${req.method} is not allowed in phase ${PHASE_NAME[phase]}`];
    try {
      const json = await def.run(req.args, cc);
      if (json.length > OUTPUT_CAPS.maxAsyncResultBytes) return [req.id, ANSWER_ERROR, `${req.service}.${req.method}: result of ${json.length} characters exceeds ${OUTPUT_CAPS.maxAsyncResultBytes}`];
      return [req.id, ANSWER_OK, json];
    } catch (err) {
      if (err instanceof ServiceError) return [req.id, ANSWER_ERROR, err.message.slice(0, 1024)];
      this.#log.warn({ tenant: cc.services.tenant, service: req.service, method: req.method, err: String((err as Error)?.message) }, 'async PDK call failed');
      return [req.id, ANSWER_ERROR, `${req.service}.${req.method} failed`];
    }
  }
}
