import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's cors: answers preflight requests (OPTIONS with Origin and
 * Access-Control-Request-Method) at the gateway, and adds the CORS headers to every other
 * response. Origins are exact (compared normalized: scheme, host, port without the default)
 * or regular expressions (an entry with a character outside [A-Za-z0-9.:/-]), anchored as
 * Kong anchors them. A regex runs under the plugin's CPU limit: one that backtracks without
 * end fails the request (500), it cannot hold the gateway.
 */
type Config = {
  origins?: readonly string[];
  methods: readonly string[];
  headers?: readonly string[];
  exposed_headers?: readonly string[];
  max_age?: number;
  credentials: boolean;
  private_network: boolean;
  preflight_continue: boolean;
  allow_origin_absent: boolean;
};

type Origin = { regex: RegExp | null; domain: string; byHost: boolean };
type Compiled = {
  allowAll: boolean;
  /** One literal origin: sent as it is, whatever the request's Origin (Kong's shortcut). */
  literal: string | null;
  origins: Origin[];
  methods: string;
  headers: string | null;
  exposed: string | null;
  maxAge: string | null;
};

export const name = 'cors';
export const version = '1.0.0';
export const priority = 2000; // Kong's

const LITERAL = /^[A-Za-z0-9.:/-]+$/;
const ORIGIN = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[^\]]*\]|[^/:?#]*)(?::(\d*))?/;

/** Kong's normalization: scheme://host[:port] without the scheme's default port; the host alone too. */
function normalize(origin: string): { domain: string; host: string } {
  const m = ORIGIN.exec(origin);
  if (m === null) return { domain: origin, host: origin };
  const scheme = m[1].toLowerCase();
  const host = m[2].toLowerCase();
  let port = m[3] === undefined || m[3] === '' ? null : m[3];
  if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) port = null;
  return { domain: `${scheme}://${host}${port === null ? '' : `:${port}`}`, host };
}

// The PDK has no configure hook: each config object (frozen, one per instance and isolate)
// is compiled on its first request, regexes included, and kept here.
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c !== undefined) return c;
  const list = config.origins ?? [];
  const allowAll = list.length === 0 || list.includes('*');
  const origins: Origin[] = [];
  for (let i = 0; i < list.length && !allowAll; i++) {
    let entry = list[i];
    const byHost = !entry.includes(':');
    if (LITERAL.test(entry)) {
      origins.push({ regex: null, domain: normalize(entry).domain, byHost });
      continue;
    }
    // Kong 0.x did not anchor; Kong anchors at the end and drops a leading '^'
    if (!entry.endsWith('$')) entry += '$';
    if (entry.startsWith('^')) entry = entry.slice(1);
    try {
      origins.push({ regex: new RegExp(`^(?:${entry})`), domain: '', byHost });
    } catch (e) {
      throw new TypeError(`cors: origins[${i}] is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  c = {
    allowAll,
    literal: list.length === 1 && LITERAL.test(list[0]) ? list[0] : null,
    origins,
    methods: config.methods.join(','),
    headers: config.headers !== undefined && config.headers.length > 0 ? config.headers.join(',') : null,
    exposed: config.exposed_headers !== undefined && config.exposed_headers.length > 0 ? config.exposed_headers.join(',') : null,
    maxAge: config.max_age === undefined ? null : String(config.max_age),
  };
  compiled.set(config, c);
  return c;
}

/** The Access-Control-Allow-Origin to send for `origin` (null: none), as Kong's configure_origin. */
function allowedOrigin(c: Compiled, origin: string | undefined): string | null {
  if (c.literal !== null) return c.literal;
  if (origin === undefined) return null;
  const n = normalize(origin);
  for (const o of c.origins) {
    const found = o.regex === null ? o.domain === n.domain : o.regex.test(o.byHost ? n.host : n.domain);
    if (found) return n.domain;
  }
  return null;
}

function isPreflight(pdk: Pdk): boolean {
  return pdk.request.getMethod() === 'OPTIONS' && typeof pdk.request.getHeader('origin') === 'string' && pdk.request.getHeader('access-control-request-method') !== undefined;
}

/** What the preflight answer and the other responses send for origin and credentials (Kong's configure_origin, configure_credentials). */
type Decision = { acao: string | null; vary: boolean; credentials: boolean };
const decision: Decision = { acao: null, vary: false, credentials: false }; // calls never overlap in an isolate

function decide(c: Compiled, config: Config, origin: string | undefined): Decision {
  if (c.allowAll) {
    // ACAC true is not allowed with ACAO '*': with credentials, the origin is echoed instead
    const echo = config.credentials && origin !== undefined;
    decision.acao = echo ? origin : '*';
    decision.vary = echo;
    decision.credentials = echo;
  } else {
    decision.acao = allowedOrigin(c, origin);
    decision.vary = true; // always, so caches key on Origin
    decision.credentials = config.credentials;
  }
  return decision;
}

/**
 * Everything happens in access (Kong splits it over access and header_filter): headers set
 * there apply to the upstream's response and to the answer of a later plugin that exits
 * (Kong's header_filter runs on those too), and the chain needs no headerFilter crossing.
 */
export function access(pdk: Pdk, config: Config): void {
  const preflight = isPreflight(pdk);
  if (preflight) {
    // answered here, or left whole to the upstream (preflight_continue)
    if (!config.preflight_continue) answerPreflight(pdk, config, compile(config));
    return;
  }
  const origin = pdk.request.getHeader('origin');
  const o = typeof origin === 'string' ? origin : undefined;
  if (o === undefined && !config.allow_origin_absent) return;
  const c = compile(config);
  const r = pdk.response;
  const d = decide(c, config, o);
  if (d.vary) r.addHeader('Vary', 'Origin');
  if (d.acao === null) r.clearHeader('Access-Control-Allow-Origin');
  else r.setHeader('Access-Control-Allow-Origin', d.acao);
  if (d.credentials) r.setHeader('Access-Control-Allow-Credentials', 'true');
  if (c.exposed !== null) r.setHeader('Access-Control-Expose-Headers', c.exposed);
}

function answerPreflight(pdk: Pdk, config: Config, c: Compiled): never {
  const origin = pdk.request.getHeader('origin') as string;
  const out: Record<string, string> = {};
  const d = decide(c, config, origin);
  if (d.vary) out.Vary = 'Origin';
  if (d.acao !== null) out['Access-Control-Allow-Origin'] = d.acao;
  if (d.credentials) out['Access-Control-Allow-Credentials'] = 'true';
  const requested = pdk.request.getHeader('access-control-request-headers');
  const headers = c.headers ?? (typeof requested === 'string' ? requested : null);
  if (headers !== null) out['Access-Control-Allow-Headers'] = headers;
  out['Access-Control-Allow-Methods'] = c.methods;
  if (c.maxAge !== null) out['Access-Control-Max-Age'] = c.maxAge;
  if (config.private_network && pdk.request.getHeader('access-control-request-private-network') === 'true') out['Access-Control-Allow-Private-Network'] = 'true';
  return pdk.response.exit(200, null, out);
}
