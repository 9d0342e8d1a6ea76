import { convertConsumers, type PasswordHasher } from './consumers.ts';
import { PluginConverter, type SchemaOf } from './plugins.ts';
import { isRecord, records, Report, type KongRecord } from './report.ts';
import { convertServices } from './services.ts';

export type ConvertOptions = {
  /** Tenant the whole Kong file becomes (Kong's `_workspace` when absent, else "default"). */
  readonly tenant?: string;
  readonly schemaOf: SchemaOf;
  readonly hashPassword: PasswordHasher;
};

export type Converted = { readonly config: { tenants: Record<string, unknown>[] }; readonly report: Report };

/** Kong 3.x declarative config entities we convert; the rest are listed in the report. */
const CONVERTED = new Set(['_format_version', '_transform', '_workspace', '_comment', '_info', 'services', 'routes', 'consumers', 'plugins', 'upstreams', 'keyauth_credentials', 'basicauth_credentials', 'jwt_secrets', 'acls']);

export class KongFormatError extends Error {}

/**
 * A Kong declarative config (`_format_version` "3.0", or "2.1") as one Isogate tenant:
 * services with their routes, consumers with key-auth/basic-auth/jwt/acl credentials, and
 * the plugins Isogate bundles, their config carried over field by field (the bundled
 * plugins use Kong's field names). Whatever cannot be mapped is in the report; the rest
 * still converts.
 */
export function convertKong(doc: unknown, options: ConvertOptions): Converted {
  if (!isRecord(doc)) throw new KongFormatError('not a Kong declarative config: the document is not a mapping');
  const version = doc._format_version;
  if (typeof version !== 'string' || !/^(3\.\d+|2\.1)$/.test(version)) {
    throw new KongFormatError(`_format_version ${JSON.stringify(version)}: expected "3.0" (Kong 3.x) or "2.1"`);
  }
  const report = new Report();
  for (const key of Object.keys(doc)) if (!CONVERTED.has(key)) report.skipped(key, 'not converted (Isogate has no equivalent yet)');
  const services = convertServices(doc, report);
  const consumers = convertConsumers(doc, report, options.hashPassword);
  const plugins = new PluginConverter(options.schemaOf, report, services, consumers);
  plugins.addAll(doc.plugins, 'plugins', {});
  records(doc.services, 'services', report).forEach((s, i) => {
    const service = typeof s.name === 'string' ? s.name : (s.id as string | undefined);
    if (service !== undefined) plugins.addAll(s.plugins, `services[${i}].plugins`, { service });
    records(s.routes, `services[${i}].routes`, report).forEach((r, j) => {
      const route = (r.name ?? r.id) as string | undefined;
      if (route !== undefined) plugins.addAll(r.plugins, `services[${i}].routes[${j}].plugins`, { route });
      else if (Array.isArray(r.plugins) && r.plugins.length > 0) report.skipped(`services[${i}].routes[${j}].plugins`, 'the route has no name or id to scope them to');
    });
  });
  records(doc.routes, 'routes', report).forEach((r: KongRecord, j) => {
    const route = (r.name ?? r.id) as string | undefined;
    if (route !== undefined) plugins.addAll(r.plugins, `routes[${j}].plugins`, { route });
  });
  records(doc.consumers, 'consumers', report).forEach((c, i) => {
    const consumer = (c.username ?? c.custom_id ?? c.id) as string | undefined;
    if (consumer !== undefined) plugins.addAll(c.plugins, `consumers[${i}].plugins`, { consumer });
  });
  const tenant: Record<string, unknown> = {
    name: options.tenant ?? (typeof doc._workspace === 'string' ? doc._workspace : 'default'),
    services: services.services,
    routes: services.routes,
  };
  if (consumers.consumers.length > 0) tenant.consumers = consumers.consumers;
  tenant.plugins = plugins.plugins;
  return { config: { tenants: [tenant] }, report };
}
