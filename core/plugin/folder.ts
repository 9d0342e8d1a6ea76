import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { LRUCache } from 'lru-cache';
import { inspectBundle, loadPlugin, type PluginInfo } from '../../sandbox/plugin-loader.ts';
import { BUILD_RECORD_FILE, BUNDLE_FILE, MANIFEST_FILE, SCHEMA_FILE, readManifest, type Manifest } from './manifest.ts';
import { undescribedFields } from './schema-descriptions.ts';

/**
 * The full form of a plugin: a folder with plugin.json, schema.json and a handler module
 * (which may import npm packages from the folder's own node_modules: esbuild bundles them).
 * The gateway builds the handler on load, or loads the prebuilt bundle `isogate plugin
 * build` wrote (dist/plugin.js) when the sources it was built from are unchanged (by
 * content hash, dist/build.json) or absent (a deployment that ships only the bundle).
 */
export type FolderPlugin = {
  readonly info: PluginInfo & Pick<Manifest, 'reads' | 'capabilities'>;
  readonly manifest: Manifest;
  /** The folder's schema.json (absolute). */
  readonly schemaFile: string;
};

/** What `isogate plugin build` records beside the bundle: SHA-256 of the bundle and of each source, relative to the folder. */
export type BuildRecord = { readonly bundle: string; readonly sources: Readonly<Record<string, string>> };

export function isPluginFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export const sha256 = (text: string | Buffer): string => createHash('sha256').update(text).digest('hex');

/** Prebuilt bundles inspected, by the SHA-256 of their code: a reload of an unchanged bundle does not inspect it again. */
const prebuilt = new LRUCache<string, PluginInfo>({ max: 200 });

export async function loadPluginFolder(folder: string): Promise<FolderPlugin> {
  const dir = resolve(folder);
  const manifest = await readManifest(dir);
  const schemaFile = join(dir, SCHEMA_FILE);
  await checkSchema(schemaFile);
  const entry = join(dir, manifest.handler);
  const bundleFile = join(dir, BUNDLE_FILE);
  let info: PluginInfo;
  if (!existsSync(entry)) {
    if (!existsSync(bundleFile)) throw new Error(`${entry}: not found (plugin.json \`handler\`), and no prebuilt ${BUNDLE_FILE}`);
    info = await loadPrebuilt(dir, bundleFile, bundleFile, []);
  } else {
    const fresh = await freshSources(dir);
    // The source is named the entry either way: `--check` type-checks it.
    info = fresh !== null ? await loadPrebuilt(dir, bundleFile, entry, fresh) : await loadPlugin(entry);
  }
  checkAgreement(manifest, info, dir);
  const inputs = [...new Set([...info.inputs, join(dir, MANIFEST_FILE), schemaFile])];
  return { info: { ...info, inputs, reads: manifest.reads, capabilities: manifest.capabilities }, manifest, schemaFile };
}

/** schema.json must parse and describe every field. */
export async function checkSchema(file: string): Promise<void> {
  let schema: unknown;
  try {
    schema = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found (a plugin folder has a JSON Schema of its config)' : (err as Error).message.split('\n')[0]}`);
  }
  const missing = undescribedFields(schema);
  if (missing.length > 0) throw new Error(`${file}: every field needs a "description" (operators and the admin API read it); missing on ${missing.map((f) => `"${f}"`).join(', ')}`);
}

/** The absolute sources of the prebuilt bundle when dist/build.json says they are what it was built from; else null. */
async function freshSources(dir: string): Promise<string[] | null> {
  let record: BuildRecord;
  try {
    record = JSON.parse(await readFile(join(dir, BUILD_RECORD_FILE), 'utf8')) as BuildRecord;
  } catch {
    return null;
  }
  const files = Object.keys(record.sources ?? {}).map((f) => join(dir, f));
  const hashes = await Promise.all([join(dir, BUNDLE_FILE), ...files].map((f) => readFile(f).then(sha256, () => null)));
  if (files.length === 0 || hashes[0] !== record.bundle) return null;
  return files.every((f, i) => hashes[i + 1] === record.sources[relative(dir, f)]) ? files : null;
}

async function loadPrebuilt(dir: string, bundleFile: string, source: string, sources: readonly string[]): Promise<PluginInfo> {
  const code = await readFile(bundleFile, 'utf8');
  const inputs = [...sources, bundleFile, join(dir, BUILD_RECORD_FILE)];
  const key = sha256(code);
  const cached = prebuilt.get(key);
  if (cached !== undefined) return { ...cached, source, inputs };
  const info = inspectBundle(code, source, inputs);
  prebuilt.set(key, info);
  return info;
}

/** plugin.json and the module's exports must say the same; throws naming every difference. */
export function checkAgreement(manifest: Manifest, info: PluginInfo, dir: string): void {
  const diffs: string[] = [];
  for (const k of ['name', 'version', 'priority'] as const) {
    if (manifest[k] !== info[k]) diffs.push(`${k}: plugin.json says ${JSON.stringify(manifest[k])}, the module exports ${JSON.stringify(info[k])}`);
  }
  const declared = [...manifest.phases].sort().join(', ');
  const exported = [...info.handlers].sort().join(', ');
  if (declared !== exported) diffs.push(`phases: plugin.json says [${declared}], the module exports handlers [${exported}]`);
  if (diffs.length > 0) throw new Error(`${join(dir, MANIFEST_FILE)} and ${manifest.handler} disagree: ${diffs.join('; ')}`);
}
