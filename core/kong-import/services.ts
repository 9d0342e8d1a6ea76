import { isRecord, records, usableName, type KongRecord, type Report } from './report.ts';

/** What the converter keeps of each Kong service: our service entries, keyed by Kong's name and id. */
export type ServiceMap = {
  /** Kong service name or id -> our service names (two when its routes disagree on preserve_host). */
  readonly byRef: Map<string, { plain: string | null; preserving: string | null; name: string }>;
  readonly services: Record<string, unknown>[];
  readonly routes: Record<string, unknown>[];
  /** Kong route name or id -> our route name. */
  readonly routeByRef: Map<string, string>;
};

// Kong's fields we map, and those we knowingly leave out (anything else is reported too).
const SERVICE_FIELDS_IGNORED = new Set(['id', 'tags', 'created_at', 'updated_at', 'routes', 'plugins']);
const ROUTE_FIELDS_IGNORED = new Set(['id', 'tags', 'created_at', 'updated_at', 'plugins', 'service', 'regex_priority', 'path_handling', 'request_buffering', 'response_buffering', 'https_redirect_status_code']);
/** Match criteria we cannot express: dropping one would make the route match more than in Kong, so the route is skipped. */
const ROUTE_CRITERIA_UNSUPPORTED = ['headers', 'snis', 'sources', 'destinations', 'expression'];
const HOST_FORM = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** Kong's `url` shorthand or protocol/host/port/path, as our http:// URL; null (reported) when not http. */
function serviceUrl(s: KongRecord, at: string, report: Report, upstreams: Map<string, string>): string | null {
  let protocol: string, host: string, port: number | undefined, path: string;
  if (typeof s.url === 'string') {
    let u: URL;
    try {
      u = new URL(s.url);
    } catch {
      report.skipped(at, `url ${JSON.stringify(s.url)} is not a URL`);
      return null;
    }
    protocol = u.protocol.slice(0, -1);
    host = u.hostname;
    port = u.port === '' ? undefined : Number(u.port);
    path = u.pathname === '/' && !s.url.endsWith('/') ? '' : u.pathname;
  } else {
    protocol = typeof s.protocol === 'string' ? s.protocol : 'http';
    host = typeof s.host === 'string' ? s.host : '';
    port = typeof s.port === 'number' ? s.port : undefined;
    path = typeof s.path === 'string' ? s.path : '';
  }
  if (protocol !== 'http') {
    report.skipped(at, `protocol ${protocol}: Isogate proxies to http:// upstreams only (terminate TLS in front of the upstream, or keep this service on Kong)`);
    return null;
  }
  if (host === '') {
    report.skipped(at, 'no host');
    return null;
  }
  const target = upstreams.get(host);
  if (target !== undefined) {
    report.changed(at, `host ${host} is a Kong upstream: Isogate has no load balancer yet, the service goes to its first target ${target}`);
    return `http://${target}${path === '/' ? '' : path}`;
  }
  return `http://${host}${port === undefined || port === 80 ? '' : `:${port}`}${path === '/' ? '' : path}`;
}

/** Kong `upstreams` -> name -> first target with weight > 0 (host:port). */
export function upstreamTargets(doc: KongRecord, report: Report): Map<string, string> {
  const out = new Map<string, string>();
  records(doc.upstreams, 'upstreams', report).forEach((u, i) => {
    const targets = records(u.targets, `upstreams[${i}].targets`, report).filter((t) => t.weight !== 0 && typeof t.target === 'string');
    if (typeof u.name === 'string' && targets.length > 0) out.set(u.name, String(targets[0].target));
    else report.skipped(`upstreams[${i}]`, 'no target with a weight');
  });
  return out;
}

function routeName(r: KongRecord, serviceName: string, n: number): string {
  return usableName(r.name) ?? `${serviceName}-route-${n}`;
}

/**
 * One Kong route as ours, or null (reported) when Isogate cannot match what Kong matches.
 * Kong's defaults differ from ours: strip_path true, preserve_host false.
 */
function convertRoute(r: KongRecord, at: string, name: string, report: Report): { route: Record<string, unknown>; preserveHost: boolean } | null {
  for (const field of ROUTE_CRITERIA_UNSUPPORTED) {
    if (r[field] !== undefined && r[field] !== null && !(Array.isArray(r[field]) && r[field].length === 0) && !(isRecord(r[field]) && Object.keys(r[field]).length === 0)) {
      report.skipped(at, `matches on ${field}, which Isogate's router cannot (the route would match more than in Kong)`);
      return null;
    }
  }
  const protocols = Array.isArray(r.protocols) ? r.protocols : ['http', 'https'];
  if (!protocols.some((p) => p === 'http' || p === 'https')) {
    report.skipped(at, `protocols ${JSON.stringify(protocols)}: Isogate routes HTTP only`);
    return null;
  }
  const route: Record<string, unknown> = { name };
  if (Array.isArray(r.paths) && r.paths.length > 0) {
    const paths: string[] = [];
    r.paths.forEach((p, i) => {
      if (typeof p === 'string' && p.startsWith('~')) report.dropped(`${at}.paths[${i}]`, `regex path ${JSON.stringify(p)}: Isogate routes by path prefix only`);
      else if (typeof p === 'string' && /^\/[^?#\s]*$/.test(p)) paths.push(p);
      else report.dropped(`${at}.paths[${i}]`, `path ${JSON.stringify(p)} is not a path prefix`);
    });
    if (paths.length === 0) {
      report.skipped(at, 'none of its paths can be matched by Isogate');
      return null;
    }
    route.paths = paths;
  }
  if (Array.isArray(r.hosts) && r.hosts.length > 0) {
    const bad = r.hosts.filter((h) => typeof h !== 'string' || !HOST_FORM.test(h));
    if (bad.length > 0) {
      report.skipped(at, `hosts ${JSON.stringify(bad)}: Isogate matches exact hosts and "*.suffix" wildcards without a port`);
      return null;
    }
    route.hosts = r.hosts;
  }
  if (Array.isArray(r.methods) && r.methods.length > 0) route.methods = r.methods.map((m) => String(m).toUpperCase());
  route.stripPath = r.strip_path !== false;
  for (const key of Object.keys(r)) {
    if (!ROUTE_FIELDS_IGNORED.has(key) && !['name', 'paths', 'hosts', 'methods', 'strip_path', 'preserve_host', 'protocols', ...ROUTE_CRITERIA_UNSUPPORTED].includes(key) && r[key] !== null) {
      report.dropped(`${at}.${key}`, 'no Isogate equivalent');
    }
  }
  return { route, preserveHost: r.preserve_host === true };
}

/**
 * Kong services (with their nested routes) and top-level routes, as our services and
 * routes. Kong's preserve_host is per route, ours per service: a service whose routes
 * disagree becomes two services, `<name>` and `<name>-preserve-host`.
 */
export function convertServices(doc: KongRecord, report: Report): ServiceMap {
  const upstreams = upstreamTargets(doc, report);
  const map: ServiceMap = { byRef: new Map(), services: [], routes: [], routeByRef: new Map() };
  const kongServices = records(doc.services, 'services', report);
  const routesOf = new Map<KongRecord, { r: KongRecord; at: string }[]>();
  kongServices.forEach((s, i) => routesOf.set(s, records(s.routes, `services[${i}].routes`, report).map((r, j) => ({ r, at: `services[${i}].routes[${j}]` }))));
  records(doc.routes, 'routes', report).forEach((r, j) => {
    const ref = isRecord(r.service) ? (r.service.name ?? r.service.id) : r.service;
    const owner = kongServices.find((s) => s.name === ref || s.id === ref);
    if (owner === undefined) report.skipped(`routes[${j}]`, ref === undefined ? 'a route without a service: Isogate routes always forward to a service' : `its service ${JSON.stringify(ref)} is not in the file`);
    else routesOf.get(owner)!.push({ r, at: `routes[${j}]` });
  });
  const taken = new Set<string>();
  kongServices.forEach((s, i) => {
    const at = `services[${i}]${typeof s.name === 'string' ? `(${s.name})` : ''}`;
    const name = usableName(s.name) ?? `service-${i}`;
    if (s.enabled === false) {
      report.skipped(at, 'disabled in Kong');
      return;
    }
    const url = serviceUrl(s, at, report, upstreams);
    if (url === null) return;
    for (const key of Object.keys(s)) {
      if (!SERVICE_FIELDS_IGNORED.has(key) && !['name', 'url', 'protocol', 'host', 'port', 'path', 'connect_timeout', 'read_timeout', 'enabled'].includes(key) && s[key] !== null) {
        report.dropped(`${at}.${key}`, 'no Isogate equivalent');
      }
    }
    const base: Record<string, unknown> = { url };
    if (typeof s.read_timeout === 'number') base.timeoutMs = s.read_timeout;
    if (typeof s.connect_timeout === 'number') base.connectTimeoutMs = s.connect_timeout;
    const converted = (routesOf.get(s) ?? []).map(({ r, at: rat }, n) => {
      const rname = routeName(r, name, n);
      if (taken.has(rname)) {
        report.skipped(rat, `route name ${rname} is used twice`);
        return null;
      }
      taken.add(rname);
      const c = convertRoute(r, rat, rname, report);
      if (c !== null) {
        if (typeof r.id === 'string') map.routeByRef.set(r.id, rname);
        if (typeof r.name === 'string') map.routeByRef.set(r.name, rname);
      }
      return c;
    }).filter((c) => c !== null);
    const kinds = new Set(converted.map((c) => c.preserveHost));
    const both = kinds.size === 2;
    const names = { name, plain: null as string | null, preserving: null as string | null };
    for (const preserveHost of [false, true]) {
      if (!kinds.has(preserveHost) && !(converted.length === 0 && !preserveHost)) continue;
      const sname = preserveHost && both ? `${name}-preserve-host` : name;
      map.services.push({ name: sname, ...base, preserveHost });
      if (preserveHost) names.preserving = sname;
      else names.plain = sname;
      for (const c of converted) if (c.preserveHost === preserveHost) map.routes.push({ ...c.route, service: sname });
    }
    if (both) report.changed(at, `its routes disagree on preserve_host (per service in Isogate): split into ${name} and ${name}-preserve-host`);
    if (typeof s.id === 'string') map.byRef.set(s.id, names);
    if (typeof s.name === 'string') map.byRef.set(s.name, names);
  });
  return map;
}
