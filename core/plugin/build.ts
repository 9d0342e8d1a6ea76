import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { bundlePlugin, inspectBundle, type PluginInfo } from '../../sandbox/plugin-loader.ts';
import { checkAgreement, checkSchema, sha256, type BuildRecord } from './folder.ts';
import { BUILD_RECORD_FILE, BUNDLE_FILE, SCHEMA_FILE, readManifest } from './manifest.ts';

export type BuiltPlugin = { readonly info: PluginInfo; readonly bundleFile: string; readonly bytes: number };

/**
 * `isogate plugin build <dir>`: checks plugin.json and schema.json, bundles the handler with
 * esbuild (npm imports from the folder's node_modules included), checks the bundle's exports
 * against plugin.json in a throwaway isolate, and writes dist/plugin.js with dist/build.json
 * (the content hashes the gateway compares to use the bundle instead of building again).
 * Throws PluginBuildError (esbuild's file:line:col report) or an Error naming the file.
 */
export async function buildPluginFolder(folder: string): Promise<BuiltPlugin> {
  const dir = resolve(folder);
  const manifest = await readManifest(dir);
  await checkSchema(join(dir, SCHEMA_FILE));
  const entry = join(dir, manifest.handler);
  const { code, inputs } = await bundlePlugin(entry);
  const info = inspectBundle(code, entry, inputs);
  checkAgreement(manifest, info, dir);
  const sources: Record<string, string> = {};
  for (const f of inputs) sources[relative(dir, f)] = sha256(await readFile(f));
  const record: BuildRecord = { bundle: sha256(code), sources };
  const bundleFile = join(dir, BUNDLE_FILE);
  await mkdir(dirname(bundleFile), { recursive: true });
  await writeFile(bundleFile, code);
  await writeFile(join(dir, BUILD_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
  return { info, bundleFile, bytes: Buffer.byteLength(code) };
}
