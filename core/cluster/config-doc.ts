import { basename, dirname, extname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import type { RawConfig } from '../admin-api/store.ts';

/**
 * What the nodes of a cluster share through Redis: the tenants, what the admin API changes.
 * Everything else (listeners, workers, supervisor, log, admin listener and tokens, the
 * operator's limits, sandbox and proxy settings, the cluster block itself) is the node's
 * own, from its bootstrap file, as kong.conf is a Kong node's: nodes may listen on different
 * ports, and those settings change only in the file (as on one node). Keep the operator's
 * settings the same on every node: a change one node takes may be refused by another.
 */
export const SHARED_KEYS = ['tenants'] as const;

export type SharedConfig = Record<string, unknown>;

export function sharedOf(raw: RawConfig): SharedConfig {
  const out: SharedConfig = {};
  for (const k of SHARED_KEYS) if (raw[k] !== undefined) out[k] = raw[k];
  return out;
}

/** The node's own keys from its bootstrap file, and the cluster's shared ones. */
export function merged(local: RawConfig, shared: SharedConfig): RawConfig {
  const out: RawConfig = {};
  for (const [k, v] of Object.entries(local)) if (!(SHARED_KEYS as readonly string[]).includes(k)) out[k] = v;
  for (const k of SHARED_KEYS) if (shared[k] !== undefined) (out as Record<string, unknown>)[k] = structuredClone(shared[k]);
  out.tenants ??= [];
  return out;
}

/**
 * The node's cluster file, next to its bootstrap file (`gateway.yaml` -> `gateway.cluster.yaml`):
 * the config it runs, as of the last version from Redis it took. The workers load it (the
 * supervisor is the node's one Redis client), and a node that starts while Redis is down
 * starts from it. Plugin paths resolve from the same folder as the bootstrap file's.
 */
export function clusterFileOf(bootstrapFile: string): string {
  const ext = extname(bootstrapFile);
  return join(dirname(bootstrapFile), `${basename(bootstrapFile, ext)}.cluster${ext === '' ? '.yaml' : ext}`);
}

const HEADER = /^# isogate cluster config version (\d+)\b/;

/** The cluster file's text for version `version` of the cluster config. */
export function clusterFileText(version: number, raw: RawConfig): string {
  return `# isogate cluster config version ${version}: written by this node from Redis; change it through the admin API, not here\n${stringify(raw, { lineWidth: 0 })}`;
}

/** The version and data of a cluster file's text; null when it is not one (or not valid YAML). */
export function parseClusterFile(text: string): { version: number; raw: RawConfig } | null {
  const m = HEADER.exec(text);
  if (m === null) return null;
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return null;
  return { version: Number(m[1]), raw: (doc.toJS() ?? {}) as RawConfig };
}

/** The admin API's ETag of a cluster config version. */
export function clusterEtag(version: number): string {
  return `"v${version}"`;
}
