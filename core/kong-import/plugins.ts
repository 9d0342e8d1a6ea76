import { Ajv, type ValidateFunction } from 'ajv';
import { describeAjvError } from '../config/load.ts';
import type { ConsumerMap } from './consumers.ts';
import { isRecord, records, usableName, type KongRecord, type Report } from './report.ts';
import type { ServiceMap } from './services.ts';

/** The JSON Schema of a bundled plugin's config, or null when Isogate bundles no plugin of that name. */
export type SchemaOf = (name: string) => Record<string, unknown> | null;

type Scope = { service?: string; route?: string; consumer?: string };
const PLUGIN_FIELDS_IGNORED = new Set(['id', 'tags', 'created_at', 'updated_at', 'instance_name', 'protocols', 'name', 'config', 'enabled', 'service', 'route', 'consumer']);

function refOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isRecord(v)) return typeof v.name === 'string' ? v.name : typeof v.username === 'string' ? v.username : typeof v.id === 'string' ? v.id : undefined;
  return undefined;
}

/**
 * Kong dumps every field, with null for unset ones: nulls go (our schemas apply the
 * defaults), and fields the bundled plugin does not have are reported and dropped.
 */
function cleanConfig(config: unknown, schema: Record<string, unknown>, at: string, report: Report): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isRecord(config)) return out;
  const known = isRecord(schema.properties) ? schema.properties : null;
  for (const [k, v] of Object.entries(config)) {
    if (v === null) continue;
    if (known !== null && !(k in known)) {
      report.dropped(`${at}.config.${k}`, 'not a field of the Isogate plugin');
      continue;
    }
    out[k] = v;
  }
  return out;
}

export class PluginConverter {
  readonly plugins: Record<string, unknown>[] = [];
  #schemaOf: SchemaOf;
  #validators = new Map<string, ValidateFunction | null>();
  #ajv = new Ajv({ allErrors: true, useDefaults: false, strict: false, verbose: true });
  #report: Report;
  #services: ServiceMap;
  #consumers: ConsumerMap;

  constructor(schemaOf: SchemaOf, report: Report, services: ServiceMap, consumers: ConsumerMap) {
    this.#schemaOf = schemaOf;
    this.#report = report;
    this.#services = services;
    this.#consumers = consumers;
  }

  #validator(name: string): ValidateFunction | null {
    if (!this.#validators.has(name)) {
      const schema = this.#schemaOf(name);
      this.#validators.set(name, schema === null ? null : this.#ajv.compile(schema));
    }
    return this.#validators.get(name)!;
  }

  /** Converts every plugin of `list` (found at `at`), scoped by `scope` unless it names its own. */
  addAll(list: unknown, at: string, scope: Scope): void {
    records(list, at, this.#report).forEach((p, i) => this.add(p, `${at}[${i}]`, scope));
  }

  add(p: KongRecord, at: string, scope: Scope): void {
    const report = this.#report;
    const name = typeof p.name === 'string' ? p.name : '';
    const where = `${at}(${name})`;
    const schema = this.#schemaOf(name);
    if (schema === null) {
      report.skipped(where, `Isogate bundles no plugin "${name}" (write it against the PDK, or keep it on Kong)`);
      return;
    }
    if (Array.isArray(p.protocols) && !p.protocols.some((x) => x === 'http' || x === 'https')) {
      report.skipped(where, `protocols ${JSON.stringify(p.protocols)}: Isogate runs plugins on HTTP only`);
      return;
    }
    for (const key of Object.keys(p)) if (!PLUGIN_FIELDS_IGNORED.has(key) && p[key] !== null) report.dropped(`${where}.${key}`, 'no Isogate equivalent');
    const config = cleanConfig(p.config, schema, where, report);
    const validate = this.#validator(name)!;
    if (!validate(structuredClone(config))) {
      report.skipped(where, `its config does not fit the Isogate plugin: ${(validate.errors ?? []).map(describeAjvError).join('; ')}`);
      return;
    }
    const scopes = this.#scopes(p, where, scope);
    if (scopes === null) return;
    const id = usableName(p.instance_name);
    scopes.forEach((s, n) => {
      const entry: Record<string, unknown> = { name };
      if (id !== null) entry.id = n === 0 ? id : `${id}-${n + 1}`;
      Object.assign(entry, s);
      entry.config = config;
      if (p.enabled === false) entry.enabled = false;
      this.plugins.push(entry);
    });
  }

  /** Our scopes for a Kong plugin (a service split in two gives two), or null when its scope was not converted. */
  #scopes(p: KongRecord, where: string, inherited: Scope): Scope[] | null {
    const report = this.#report;
    const out: Scope = {};
    const consumerRef = refOf(p.consumer) ?? inherited.consumer;
    if (consumerRef !== undefined) {
      const username = this.#consumers.byRef.get(consumerRef);
      if (username === undefined) {
        report.skipped(where, `its consumer ${JSON.stringify(consumerRef)} was not converted`);
        return null;
      }
      out.consumer = username;
    }
    const routeRef = refOf(p.route) ?? inherited.route;
    if (routeRef !== undefined) {
      const route = this.#services.routeByRef.get(routeRef);
      if (route === undefined) {
        report.skipped(where, `its route ${JSON.stringify(routeRef)} was not converted`);
        return null;
      }
      out.route = route;
    }
    const serviceRef = refOf(p.service) ?? inherited.service;
    if (serviceRef !== undefined) {
      const names = this.#services.byRef.get(serviceRef);
      if (names === undefined) {
        report.skipped(where, `its service ${JSON.stringify(serviceRef)} was not converted`);
        return null;
      }
      const ours = [names.plain, names.preserving].filter((n) => n !== null);
      if (out.route !== undefined) {
        // A route belongs to one of the split services: scope by the route alone is the same set.
        return [out];
      }
      return ours.map((service) => ({ ...out, service }));
    }
    return [out];
  }
}
