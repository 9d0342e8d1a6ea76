import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigError } from '../errors.ts';
import { HANDLER_PHASE, PHASE } from '../../pdk-bridge/host/phases.ts';
import { PluginBuildError, loadPlugin, type PluginInfo } from '../../sandbox/plugin-loader.ts';
import { DEFAULT_CEILINGS, DEFAULT_LIMITS, OUTPUT_CAPS, type Limits } from '../../sandbox/limits.ts';
import type { ChainSpec, InstanceSpec, TenantProgram } from '../../sandbox/program.ts';
import { ConsumerIndex } from '../consumers/index.ts';
import { ChainBuilder, scopeName, type Candidate, type ConsumerChain } from './chains.ts';
import { DEFAULT_BREAKER, type BreakerConfig } from '../../sandbox/breaker.ts';
import { describeAjvError } from './load.ts';
import { normalizePath } from '../router/router.ts';
import { isPluginFolder, loadPluginFolder } from '../plugin/folder.ts';
import { MANIFEST_FILE, SCHEMA_FILE } from '../plugin/manifest.ts';
import { compileTrustedProxies, type TrustedProxies } from '../trusted-proxies.ts';
import type { ConfigInput, LimitsInput, PluginInput, TenantInput } from './types.ts';

export const BUNDLED_PLUGINS_DIR = resolve(import.meta.dirname, '..', '..', 'plugins');

/** A service as routes use it: everything the proxy needs, resolved. */
export type ServiceSpec = {
  readonly tenant: string;
  readonly name: string;
  /** `http://host:port` */
  readonly origin: string;
  /** The origin's host (IPv6 without brackets) and port, for connections outside the pools (WebSocket tunnels). */
  readonly hostname: string;
  readonly port: number;
  /** Base path of the service URL without trailing slash ('' for none). */
  readonly basePath: string;
  /** Host header sent when preserveHost is false. */
  readonly hostHeader: string;
  readonly preserveHost: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  /** "host:port" a plugin may send requests to (service.setTarget): the url's own first, then `targets`; lower case. */
  readonly targets: readonly string[];
};

export type InstanceInfo = {
  readonly id: string;
  readonly name: string;
  readonly failOpen: boolean;
};

/** Gateway-wide proxy settings, decided once per config (the `proxy` block). */
export type ProxySpec = {
  /** Via entries appended to what this gateway forwards, by the HTTP version of the message it received; null: no Via. */
  readonly via11: string | null;
  readonly via10: string | null;
  readonly websocket: { readonly idleTimeoutMs: number; readonly maxMessageBytes: number };
  readonly bodies: { readonly maxRequestBodyBytes: number; readonly maxFilteredBodyBytes: number };
  /** Peers whose X-Forwarded-* the PDK believes (null: none). */
  readonly trusted: TrustedProxies;
};

export function compileProxy(input: ConfigInput['proxy'], errors: string[] = []): ProxySpec {
  const via = input.via;
  return {
    trusted: compileTrustedProxies(input.trustedProxies ?? [], 'proxy.trustedProxies', errors),
    via11: via === false ? null : `1.1 ${via}`,
    via10: via === false ? null : `1.0 ${via}`,
    websocket: { idleTimeoutMs: input.websocket.idleTimeoutMs, maxMessageBytes: input.websocket.maxMessageBytes },
    bodies: {
      maxRequestBodyBytes: input.bodies?.maxRequestBodyBytes ?? OUTPUT_CAPS.maxRequestBodyBytes,
      maxFilteredBodyBytes: input.bodies?.maxFilteredBodyBytes ?? OUTPUT_CAPS.maxFilteredBodyBytes,
    },
  };
}

/** A route as the proxy sees it, before runtime objects (pool, sandbox) are attached. */
export type RouteSpec = {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly service: ServiceSpec;
  readonly hosts: readonly string[] | null;
  readonly paths: readonly string[];
  readonly methods: readonly string[] | null;
  readonly stripPath: boolean;
  /** The config's proxy settings (one object shared by every route). */
  readonly proxy: ProxySpec;
  /** Chain of this route in its tenant's program, or -1 when no plugin applies. */
  readonly chainId: number;
  /** Bit set of the phases the chain, or one of its consumer variants, has handlers for. */
  readonly phases: number;
  /** The phases of the chain itself (a request starts with these). */
  readonly chainPhases: number;
  /** A plugin of the chain (or of a consumer variant) declares `reads: ['body']`: the client's body is buffered before rewrite/access. */
  readonly readsBody: boolean;
  /** Consumer id -> the chains authenticating that consumer leads to, by phase (core/config/chains.ts); null: the route has no consumer-scoped plugins. */
  readonly consumerChains: ReadonlyMap<string, ConsumerChain> | null;
  /** The tenant's consumers and credentials. */
  readonly consumers: ConsumerIndex;
};

/** A tenant's rewrite chain: run once the tenant of a request is known, before its route is chosen (core/rewrite-first.ts). */
export type TenantRewriteSpec = {
  readonly tenant: string;
  /** Chain in the tenant's program: the tenant-wide rewrite handlers, and log handlers for requests answered before routing. */
  readonly chainId: number;
  /** Its phases: rewrite, and log when some tenant-wide instance has a log handler. */
  readonly phases: number;
  /** A plugin of the chain reads the client's body: it is buffered before rewrite. */
  readonly readsBody: boolean;
  readonly proxy: ProxySpec;
  readonly consumers: ConsumerIndex;
};

export type CompiledConfig = {
  readonly input: ConfigInput;
  readonly routes: readonly RouteSpec[];
  /** Per tenant that has tenant-wide rewrite handlers, its rewrite chain; a tenant without is absent. */
  readonly rewrites: ReadonlyMap<string, TenantRewriteSpec>;
  /** What is valid but likely not meant (a scoped instance's rewrite handler, which never runs), each with the path of its field. */
  readonly warnings: readonly string[];
  readonly programs: ReadonlyMap<string, TenantProgram>;
  readonly instances: ReadonlyMap<string, readonly InstanceInfo[]>;
  /** Per tenant, its consumers and credentials (what the host's consumer and credential lookups read). */
  readonly consumers: ReadonlyMap<string, ConsumerIndex>;
  readonly limits: { readonly defaults: Limits; readonly ceilings: Limits };
};

const pluginAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const schemaCache = new Map<string, ValidateFunction>();

async function schemaValidator(file: string): Promise<ValidateFunction> {
  const text = await readFile(file, 'utf8');
  const key = createHash('sha256').update(text).digest('hex');
  let v = schemaCache.get(key);
  if (v === undefined) {
    v = pluginAjv.compile(JSON.parse(text));
    schemaCache.set(key, v);
  }
  return v;
}

/**
 * Compiles a validated config into plain, immutable specs: each route knows its service
 * and its plugin chain per phase; each tenant gets the program its isolate will run.
 * Everything a request needs is decided here, once. Throws ConfigError listing every
 * problem found, each with the path of its field.
 */
export async function compileConfig(input: ConfigInput, file: string): Promise<CompiledConfig> {
  const errors: string[] = [];
  const baseDir = dirname(resolve(file));
  const ceilings = operatorLimits(DEFAULT_CEILINGS, input.limits.ceilings, 'limits.ceilings', errors);
  // A ceiling on the cap is also the cap of tenants that set none.
  const defaults = operatorLimits({ ...DEFAULT_LIMITS, cpuMaxMs: ceilings.cpuMaxMs }, input.limits.defaults, 'limits.defaults', errors);
  for (const k of ['cpuMs', 'memoryMb', 'cpuWeight', 'wallMs'] as const) {
    if (defaults[k] > ceilings[k]) errors.push(`limits.defaults.${k}: ${defaults[k]} is above the ceiling ${ceilings[k]}`);
  }
  if (ceilings.cpuMaxMs !== null && defaults.cpuMaxMs !== null && defaults.cpuMaxMs > ceilings.cpuMaxMs) {
    errors.push(`limits.defaults.cpuMaxMs: ${defaults.cpuMaxMs} is above the ceiling ${ceilings.cpuMaxMs}`);
  }

  const routes: RouteSpec[] = [];
  const programs = new Map<string, TenantProgram>();
  const instanceInfo = new Map<string, InstanceInfo[]>();
  const consumerIndexes = new Map<string, ConsumerIndex>();
  const rewrites = new Map<string, TenantRewriteSpec>();
  const warnings: string[] = [];
  const tenantNames = new Set<string>();
  const proxy = compileProxy(input.proxy, errors);

  for (let ti = 0; ti < input.tenants.length; ti++) {
    const tenant = input.tenants[ti];
    const at = `tenants[${ti}]`;
    if (tenantNames.has(tenant.name)) errors.push(`${at}.name: tenant "${tenant.name}" is declared twice`);
    tenantNames.add(tenant.name);
    const breaker: BreakerConfig = { ...DEFAULT_BREAKER, ...input.sandbox.breaker, ...tenant.breaker };
    const compiled = await compileTenant(tenant, at, baseDir, defaults, ceilings, breaker, proxy, errors, warnings);
    if (compiled === null) continue;
    routes.push(...compiled.routes);
    programs.set(tenant.name, compiled.program);
    instanceInfo.set(tenant.name, compiled.instances);
    consumerIndexes.set(tenant.name, compiled.consumers);
    if (compiled.rewrite !== null) rewrites.set(tenant.name, compiled.rewrite);
  }
  checkConflicts(input, errors);
  if (errors.length > 0) throw new ConfigError(file, errors);
  return { input, routes, rewrites, warnings, programs, instances: instanceInfo, consumers: consumerIndexes, limits: { defaults, ceilings } };
}

/** The route's chain and every consumer variant it may switch to. */
function chainIds(base: number, consumerChains: ReadonlyMap<string, ConsumerChain> | null): number[] {
  const ids = [base];
  if (consumerChains !== null) for (const plan of consumerChains.values()) for (const sw of Object.values(plan)) for (const c of sw.chains) ids.push(c.chainId);
  return ids;
}

/** The plugin reads the body, and (plugin.json readsWhen.body) this instance's config turns that on. */
function readsBodyOf(info: PluginInfo, config: unknown): boolean {
  if (!info.reads.includes('body')) return false;
  const when = info.readsWhen?.body;
  return when === undefined || (config !== null && typeof config === 'object' && (config as Record<string, unknown>)[when] === true);
}

/** Some rewrite or access instance of these chains (a route's have access only, a tenant's rewrite chain rewrite only) belongs to a plugin that reads the client's body. */
function readsClientBody(chains: readonly ChainSpec[], ids: readonly number[], instances: readonly InstanceSpec[], bundles: readonly PluginInfo[]): boolean {
  for (const id of ids) {
    for (const ph of [PHASE.REWRITE, PHASE.ACCESS]) {
      for (const idx of chains[id]?.[ph] ?? []) if (readsBodyOf(bundles[instances[idx].plugin], instances[idx].config)) return true;
    }
  }
  return false;
}

/** `limits.defaults` or `limits.ceilings` over the built-in ones. */
function operatorLimits(base: Limits, input: LimitsInput, at: string, errors: string[]): Limits {
  return {
    cpuMs: input.cpuMs ?? base.cpuMs,
    memoryMb: input.memoryMb ?? base.memoryMb,
    cpuWeight: input.cpuWeight ?? base.cpuWeight,
    cpuMaxMs: cpuCap(input, at, errors) ?? base.cpuMaxMs,
    wallMs: input.wallMs ?? base.wallMs,
  };
}

/** cpuMaxMs, or its deprecated alias cpuBudgetMs (which was always a hard cap); undefined when neither is given. */
function cpuCap(l: LimitsInput | undefined, at: string, errors: string[]): number | undefined {
  if (l?.cpuMaxMs !== undefined && l.cpuBudgetMs !== undefined) errors.push(`${at}.cpuBudgetMs: deprecated alias of cpuMaxMs; give only cpuMaxMs`);
  return l?.cpuMaxMs ?? l?.cpuBudgetMs;
}

async function compileTenant(
  tenant: TenantInput,
  at: string,
  baseDir: string,
  defaults: Limits,
  ceilings: Limits,
  breaker: BreakerConfig,
  proxy: ProxySpec,
  errors: string[],
  warnings: string[],
): Promise<{ routes: RouteSpec[]; rewrite: TenantRewriteSpec | null; program: TenantProgram; instances: InstanceInfo[]; consumers: ConsumerIndex } | null> {
  const before = errors.length;
  const services = new Map<string, ServiceSpec>();
  tenant.services.forEach((s, i) => {
    if (services.has(s.name)) errors.push(`${at}.services[${i}].name: service "${s.name}" is declared twice in tenant "${tenant.name}"`);
    const url = new URL(s.url);
    services.set(s.name, {
      tenant: tenant.name,
      name: s.name,
      origin: url.origin,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 80 : Number(url.port),
      basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, ''),
      hostHeader: url.host,
      preserveHost: s.preserveHost,
      timeoutMs: s.timeoutMs,
      connectTimeoutMs: s.connectTimeoutMs,
      retries: s.retries ?? 0,
      targets: [...new Set([`${url.hostname}:${url.port === '' ? 80 : url.port}`, ...(s.targets ?? [])].map((t) => t.toLowerCase()))],
    });
  });
  const routeNames = new Set<string>();
  tenant.routes.forEach((r, i) => {
    if (routeNames.has(r.name)) errors.push(`${at}.routes[${i}].name: route "${r.name}" is declared twice in tenant "${tenant.name}"`);
    routeNames.add(r.name);
    if (!services.has(r.service)) errors.push(`${at}.routes[${i}].service: tenant "${tenant.name}" has no service "${r.service}"`);
    // Requests are routed on their normalized path: a prefix in another spelling would never match.
    (r.paths ?? []).forEach((p, k) => {
      const normal = normalizePath(p);
      if (normal !== p) errors.push(`${at}.routes[${i}].paths[${k}]: "${p}" would never match (requests are routed on their normalized path): write "${normal}"`);
    });
  });

  const tenantCpu = tenant.limits?.cpuMs ?? defaults.cpuMs;
  const tenantWall = tenant.limits?.wallMs ?? defaults.wallMs;
  if (tenantWall > ceilings.wallMs) errors.push(`${at}.limits.wallMs: ${tenantWall} is above the ceiling ${ceilings.wallMs}`);
  if (tenantCpu > ceilings.cpuMs) errors.push(`${at}.limits.cpuMs: ${tenantCpu} is above the ceiling ${ceilings.cpuMs}`);
  let memoryMb = tenant.limits?.memoryMb ?? defaults.memoryMb;
  const cpuWeight = tenant.limits?.cpuWeight ?? defaults.cpuWeight;
  if (cpuWeight > ceilings.cpuWeight) errors.push(`${at}.limits.cpuWeight: ${cpuWeight} is above the ceiling ${ceilings.cpuWeight}`);
  const cpuMaxMs = cpuCap(tenant.limits, `${at}.limits`, errors) ?? defaults.cpuMaxMs;
  if (ceilings.cpuMaxMs !== null && cpuMaxMs !== null && cpuMaxMs > ceilings.cpuMaxMs) errors.push(`${at}.limits.cpuMaxMs: ${cpuMaxMs} is above the ceiling ${ceilings.cpuMaxMs}`);

  // Load every enabled plugin (bundling is the slow part: do it in parallel).
  const enabled = tenant.plugins.map((p, i) => ({ p, i })).filter(({ p }) => p.enabled);
  const loaded = await Promise.all(enabled.map(async ({ p, i }) => {
    const where = `${at}.plugins[${i}]`;
    try {
      return { p, i, info: await resolvePlugin(p, baseDir, where, errors) };
    } catch (err) {
      errors.push(`${where}: plugin "${p.name}" could not be loaded: ${loadFailure(err)}`);
      return { p, i, info: null };
    }
  }));

  const consumers = ConsumerIndex.build(tenant.name, tenant.consumers ?? [], at, errors);
  const bundles: PluginInfo[] = [];
  const bundleIndex = new Map<string, number>();
  const instances: InstanceSpec[] = [];
  const candidates: Candidate[] = [];
  for (const { p, i, info } of loaded) {
    if (info === null) continue;
    const where = `${at}.plugins[${i}]`;
    if (p.route !== undefined && !routeNames.has(p.route)) errors.push(`${where}.route: tenant "${tenant.name}" has no route "${p.route}"`);
    if (p.service !== undefined && !services.has(p.service)) errors.push(`${where}.service: tenant "${tenant.name}" has no service "${p.service}"`);
    const routeService = p.route === undefined ? undefined : tenant.routes.find((r) => r.name === p.route)?.service;
    if (p.service !== undefined && routeService !== undefined && routeService !== p.service) {
      errors.push(`${where}.service: route "${p.route}" forwards to service "${routeService}", not "${p.service}": this instance would never run`);
    }
    const consumer = p.consumer === undefined ? undefined : consumers.find(p.consumer);
    if (p.consumer !== undefined && consumer === undefined) errors.push(`${where}.consumer: tenant "${tenant.name}" has no consumer with username or id "${p.consumer}"`);
    const cpuMs = p.limits?.cpuMs ?? tenantCpu;
    if (cpuMs > ceilings.cpuMs) errors.push(`${where}.limits.cpuMs: ${cpuMs} is above the ceiling ${ceilings.cpuMs}`);
    const wallMs = p.limits?.wallMs ?? tenantWall;
    if (wallMs > ceilings.wallMs) errors.push(`${where}.limits.wallMs: ${wallMs} is above the ceiling ${ceilings.wallMs}`);
    if (p.limits?.memoryMb !== undefined) memoryMb = Math.max(memoryMb, p.limits.memoryMb);
    let b = bundleIndex.get(info.code);
    if (b === undefined) {
      b = bundles.length;
      bundles.push(info);
      bundleIndex.set(info.code, b);
    }
    const scope = scopeName(p);
    if (scope !== 'tenant' && info.handlers.includes('rewrite')) {
      warnings.push(`${where}: plugin "${info.name}" is scoped (${scope}): its rewrite handler never runs (rewrite runs before routing, for tenant-wide instances only, as in Kong); its other handlers do`);
    }
    const id = `${tenant.name}/${info.name}@${scope}`;
    const codeHash = createHash('sha256').update(info.code).digest('hex').slice(0, 12);
    const spec: InstanceSpec = { plugin: b, name: info.name, id, config: p.config, cpuMs, wallMs, httpHosts: declaredHosts(info), failOpen: p.failOpen, quarantineKey: `${id}#${codeHash}` };
    candidates.push({ name: info.name, index: instances.length, input: p, consumerId: consumer?.id, priority: info.priority, handlers: info.handlers, readsResponse: info.readsResponse !== false });
    instances.push(spec);
  }
  if (memoryMb > ceilings.memoryMb) errors.push(`${at}.limits.memoryMb: ${memoryMb} is above the ceiling ${ceilings.memoryMb}`);

  // Chains: per route, one instance per plugin name by Kong's precedence, in priority order.
  const builder = new ChainBuilder(candidates);
  const rewriteChain = builder.tenantRewrite();
  const rewrite: TenantRewriteSpec | null = rewriteChain.chainId < 0 ? null : {
    tenant: tenant.name,
    chainId: rewriteChain.chainId,
    phases: rewriteChain.phases,
    readsBody: readsClientBody(builder.chains, [rewriteChain.chainId], instances, bundles),
    proxy,
    consumers,
  };
  const routes: RouteSpec[] = [];
  tenant.routes.forEach((r) => {
    const service = services.get(r.service);
    if (service === undefined) return;
    const { chainId, phases, chainPhases, consumerChains } = builder.route(r);
    const readsBody = chainId >= 0 && readsClientBody(builder.chains, chainIds(chainId, consumerChains), instances, bundles);
    routes.push({
      id: `${tenant.name}/${r.name}`,
      tenant: tenant.name,
      name: r.name,
      service,
      hosts: r.hosts === undefined ? null : r.hosts.map((h) => h.toLowerCase()),
      paths: r.paths === undefined || r.paths.length === 0 ? ['/'] : r.paths,
      methods: r.methods === undefined || r.methods.length === 0 ? null : r.methods,
      stripPath: r.stripPath,
      proxy,
      chainId,
      phases,
      chainPhases,
      readsBody,
      consumerChains,
      consumers,
    });
  });
  if (errors.length > before) return null;

  const { chains, families, chainFamily } = builder;
  const ranks = builder.ranks(instances.length);
  const httpAllow = tenant.http?.allow ?? [];
  const body = { memoryMb, plugins: bundles.map((b) => b.code), instances, chains, families, chainFamily, ranks, breaker, cpuWeight, cpuMaxMs, httpAllow };
  const key = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  const program: TenantProgram = {
    tenant: tenant.name,
    memoryMb,
    plugins: bundles.map(({ name, version, code, source, inputs }) => ({ name, version, code, source, inputs })),
    instances,
    chains,
    families,
    chainFamily,
    ranks,
    breaker,
    cpuWeight,
    cpuMaxMs,
    httpAllow,
    key,
  };
  return { routes, rewrite, program, instances: instances.map((i) => ({ id: i.id, name: i.name, failOpen: i.failOpen })), consumers };
}

/** capabilities.http of a plugin: its plugin.json's (folder form), else its module's export; null when it declares none. */
function declaredHosts(info: PluginInfo & { capabilities?: { readonly http?: readonly string[] } }): readonly string[] | null {
  return info.capabilities?.http ?? info.httpHosts ?? null;
}

async function resolvePlugin(p: PluginInput, baseDir: string, where: string, errors: string[]): Promise<PluginInfo | null> {
  let entry: string;
  let schemaFile: string | undefined;
  let info: PluginInfo;
  if (p.path !== undefined) {
    entry = isAbsolute(p.path) ? p.path : join(baseDir, p.path);
    if (p.schema !== undefined) schemaFile = isAbsolute(p.schema) ? p.schema : join(baseDir, p.schema);
  } else {
    const folder = join(BUNDLED_PLUGINS_DIR, p.name);
    const full = existsSync(join(folder, MANIFEST_FILE));
    if (!/^[a-z0-9][a-z0-9-]*$/.test(p.name) || (!full && !existsSync(join(folder, 'handler.ts')))) {
      errors.push(`${where}.name: no bundled plugin "${p.name}" (give \`path\` for a plugin of your own)`);
      return null;
    }
    // A bundled plugin in the short form: handler.ts and schema.json, no plugin.json.
    entry = full ? folder : join(folder, 'handler.ts');
    if (!full) schemaFile = join(folder, SCHEMA_FILE);
  }
  if (!existsSync(entry)) {
    errors.push(`${where}.path: file not found: ${p.path}`);
    return null;
  }
  if (isPluginFolder(entry)) {
    if (p.schema !== undefined) {
      errors.push(`${where}.schema: a plugin folder brings its own schema.json; give no \`schema\``);
      return null;
    }
    const folder = await loadPluginFolder(entry);
    info = folder.info;
    schemaFile = folder.schemaFile;
    if (info.name !== p.name) {
      errors.push(`${where}.name: the plugin folder ${p.path ?? p.name} is named "${info.name}" (plugin.json), not "${p.name}"`);
      return null;
    }
  } else {
    info = await loadPlugin(entry);
    if (info.name !== p.name) {
      errors.push(`${where}.name: the module at ${p.path ?? p.name} exports name "${info.name}", not "${p.name}"`);
      return null;
    }
  }
  if (schemaFile !== undefined) {
    let validate: ValidateFunction;
    try {
      validate = await schemaValidator(schemaFile);
    } catch (err) {
      errors.push(`${where}.schema: cannot use ${p.schema ?? schemaFile}: ${(err as Error).message.split('\n')[0]}`);
      return null;
    }
    if (!validate(p.config)) {
      for (const e of validate.errors ?? []) errors.push(`${where}.config${describeAjvError(e).replace(/^\(root\)/, '').replace(/^(?=[^.:[])/, '.')}`);
      return null;
    }
  }
  return info;
}

/** Two routes that could claim the same request (same host key, path and an overlapping method) are an error. */
function checkConflicts(input: ConfigInput, errors: string[]): void {
  const claims = new Map<string, { tenant: string; route: string; methods: readonly string[] | null }[]>();
  input.tenants.forEach((t) => {
    for (const r of t.routes) {
      const hosts = r.hosts === undefined || r.hosts.length === 0 ? ['(any host)'] : r.hosts.map((h) => h.toLowerCase());
      const paths = r.paths === undefined || r.paths.length === 0 ? ['/'] : r.paths;
      const methods = r.methods === undefined || r.methods.length === 0 ? null : r.methods;
      for (const h of hosts) {
        for (const p of paths) {
          const key = `${h} ${p}`;
          const list = claims.get(key) ?? [];
          for (const other of list) {
            const overlap = other.methods === null || methods === null || other.methods.some((m) => methods.includes(m));
            if (overlap) {
              errors.push(`tenants: route "${t.name}/${r.name}" and route "${other.tenant}/${other.route}" both claim host ${h} path ${p}`);
            }
          }
          list.push({ tenant: t.name, route: r.name, methods });
          claims.set(key, list);
        }
      }
    }
  });
}

/** Why a plugin did not load: esbuild's whole report for a build error (file, line, source line), else the first line. */
function loadFailure(err: unknown): string {
  const message = (err as Error).message;
  return err instanceof PluginBuildError ? message.replaceAll('\n', '\n    ') : message.split('\n')[0];
}
