import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { LRUCache } from 'lru-cache';
import { bundlePlugin, inspectBundle, type PluginInfo } from '../../sandbox/plugin-loader.ts';
import { BUILD_RECORD_FILE, BUNDLE_FILE, MANIFEST_FILE, SCHEMA_FILE, readManifest, type Manifest } from './manifest.ts';
import { undescribedFields } from './schema-descriptions.ts';

/**
 * The full form of a plugin: a folder with plugin.json, schema.json and a handler module
 * (which may import npm packages from the folder's own node_modules: esbuild bundles them).
 * The gateway builds the handler on load, or loads the prebuilt bundle `isogate plugin
 * build` wrote (dist/plugin.js) when the sources it was built from are unchanged (by
 * content hash, dist/build.json) or absent (a deployment that ships only the bundle).
 * Builds on load are cached by the content hash of their sources too.
 */
export type FolderPlugin = {
  readonly info: PluginInfo & Pick<Manifest, 'reads' | 'readsResponse' | 'capabilities'>;
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

/** Bundles inspected, by the SHA-256 of their code: a reload of an unchanged bundle does not inspect it again. */
const inspected = new LRUCache<string, PluginInfo>({ max: 1000 });

/** The build cache, by entry: the SHA-256 of each source of its last build (absolute paths). */
const built = new LRUCache<string, { readonly sources: Readonly<Record<string, string>>; readonly info: PluginInfo }>({ max: 1000 });

const hashes = (files: readonly string[]): Promise<(string | null)[]> => Promise.all(files.map((f) => readFile(f).then(sha256, () => null)));

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
    info = fresh !== null ? await loadPrebuilt(dir, bundleFile, entry, fresh) : await buildCached(entry);
  }
  checkAgreement(manifest, info, dir);
  const inputs = [...new Set([...info.inputs, join(dir, MANIFEST_FILE), schemaFile])];
  return { info: { ...info, inputs, reads: manifest.reads ?? info.reads, readsWhen: manifest.readsWhen, readsResponse: manifest.readsResponse ?? true, capabilities: manifest.capabilities }, manifest, schemaFile };
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
  const now = await hashes([join(dir, BUNDLE_FILE), ...files]);
  if (files.length === 0 || now[0] !== record.bundle) return null;
  return files.every((f, i) => now[i + 1] === record.sources[relative(dir, f)]) ? files : null;
}

/**
 * Builds the handler, unless every source of its last build still has the same content
 * (a reload, or a file touched but not changed, builds nothing).
 */
async function buildCached(entry: string): Promise<PluginInfo> {
  const cached = built.get(entry);
  if (cached !== undefined) {
    const files = Object.keys(cached.sources);
    if ((await hashes(files)).every((h, i) => h === cached.sources[files[i]])) return cached.info;
  }
  const { code, inputs } = await bundlePlugin(entry);
  // Hashed right after the build (as the loader stamps its files): a file saved while it
  // is inspected makes the next load build again.
  const now = await hashes(inputs);
  const info = inspectCached(code, entry, inputs);
  built.set(entry, { sources: Object.fromEntries(inputs.map((f, i) => [f, now[i] ?? 'gone'])), info });
  return info;
}

function inspectCached(code: string, source: string, inputs: readonly string[]): PluginInfo {
  const key = sha256(code);
  const cached = inspected.get(key);
  if (cached !== undefined) return { ...cached, source, inputs };
  const info = inspectBundle(code, source, inputs);
  inspected.set(key, info);
  return info;
}

async function loadPrebuilt(dir: string, bundleFile: string, source: string, sources: readonly string[]): Promise<PluginInfo> {
  const code = await readFile(bundleFile, 'utf8');
  return inspectCached(code, source, [...sources, bundleFile, join(dir, BUILD_RECORD_FILE)]);
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
  if (manifest.readsWhen?.body !== undefined && !(manifest.reads ?? []).includes('body')) diffs.push('readsWhen.body: plugin.json does not say reads: ["body"]');
  // plugin.json decides (as for reads); a module that says false alone would be ignored without a word
  if (info.readsResponse === false && manifest.readsResponse !== false) diffs.push('readsResponse: the module exports false, plugin.json does not say readsResponse: false');
  if (manifest.readsResponse === false && !manifest.phases.includes('headerFilter')) diffs.push('readsResponse: false says what the headerFilter reads, and the plugin has none');
  if (diffs.length > 0) throw new Error(`${join(dir, MANIFEST_FILE)} and ${manifest.handler} disagree: ${diffs.join('; ')}`);
}
