import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, isAbsolute, resolve } from 'node:path';
import { build, formatMessages, type BuildFailure, type BuildResult } from 'esbuild';
import ivm from 'isolated-vm';
import { LRUCache } from 'lru-cache';
import { HANDLER_NAMES, HANDLER_PHASE, PHASE_MASKS } from '../pdk-bridge/phases.ts';
import { createBlank, prepareModule } from './blank.ts';
import type { PluginBundle } from './program.ts';
import { beacon, type ModuleTag } from './beacon.ts';

/** What the gateway learns of a plugin by loading it once in a throwaway isolate. */
export type PluginInfo = PluginBundle & {
  readonly priority: number;
  /** Phase handler names the module exports (`access`, `headerFilter`, ...). */
  readonly handlers: readonly string[];
  /** What of the request the plugin reads beyond the snapshot (`reads` export): ['body'] or []. */
  readonly reads: readonly 'body'[];
  /** plugin.json readsWhen: the body is buffered only for instances whose config has this boolean field true. */
  readonly readsWhen?: { readonly body?: string };
  /**
   * `readsResponse` export (plugin.json field): false when the plugin's headerFilter reads
   * nothing of the response (status, headers, source, serviceResponse.*), so that it may
   * run inside the access crossing (core/config/chains.ts). Absent: true.
   */
  readonly readsResponse?: boolean;
  /** capabilities.http: the outbound hosts the plugin declares, or null (it takes the tenant's allowlist). */
  readonly httpHosts?: readonly string[] | null;
};


/** Modules whose load wedged a worker (set by the supervisor): they are not run again. */
const refused = new Set<ModuleTag>();

/** Refuses to load the modules with these tags (sandbox/beacon.ts moduleTag). */
export function refuseModules(tags: Iterable<ModuleTag>): void {
  for (const t of tags) refused.add(t);
}

/** 32 bits of the SHA-256 of a module's code: how the beacon and the supervisor name it. */
export function moduleTag(code: string): ModuleTag {
  return createHash('sha256').update(code).digest().readInt32LE(0);
}

/**
 * Bundles keyed by entry path, with the size and mtime of every file esbuild read for it:
 * a reload bundles again only a plugin one of whose files changed.
 */
const bundles = new LRUCache<string, { info: PluginInfo; stamps: readonly string[] }>({ max: 1000 });

async function stampsOf(files: readonly string[]): Promise<string[]> {
  return Promise.all(files.map((f) => stat(f).then((st) => `${st.size}\0${st.mtimeMs}`, () => 'gone')));
}

/**
 * Bundles a plugin entry file (TypeScript or JavaScript, with its npm dependencies) into
 * one script with esbuild, then reads its metadata (`name`, `version`, `priority` and which
 * phase handlers it has) in a throwaway isolate: plugin code never runs on the host, not
 * even at load time.
 */
export async function loadPlugin(entry: string): Promise<PluginInfo> {
  await stat(entry); // a missing entry fails here, with the path
  const cached = bundles.get(entry);
  if (cached !== undefined && (await stampsOf(cached.info.inputs)).every((s, i) => s === cached.stamps[i])) return cached.info;
  const { code, inputs } = await bundlePlugin(entry);
  // Stamped before inspect(): a file saved meanwhile makes the next load bundle again.
  const stamps = await stampsOf(inputs);
  const info = inspectBundle(code, entry, inputs);
  bundles.set(entry, { info, stamps });
  return info;
}

/** A bundled plugin: the script the isolate runs, and every file esbuild read for it (absolute). */
export type PluginBundleCode = { readonly code: string; readonly inputs: readonly string[] };

/**
 * Bundles an entry file with esbuild into the script the isolate runs (its completion value
 * is the module's exports). `isogate plugin build` writes this script as the prebuilt bundle.
 * Throws PluginBuildError with esbuild's report.
 */
export async function bundlePlugin(entry: string): Promise<PluginBundleCode> {
  const cwd = process.cwd();
  let result: BuildResult<{ write: false; metafile: true }>;
  const kong = await kongEntry(entry);
  try {
    result = await build({
      absWorkingDir: cwd,
      metafile: true,
      ...(kong === null ? { entryPoints: [entry] } : { stdin: kong }),
      bundle: true,
      write: false,
      format: 'iife',
      globalName: '__isg_exports',
      platform: 'neutral',
      target: 'es2023',
      logLevel: 'silent',
      legalComments: 'none',
    });
  } catch (err) {
    throw await buildError(err);
  }
  // The wrapper keeps the bundle's top-level `var` local and makes the exports the
  // script's completion value.
  const code = `(function () {\n${result.outputFiles[0].text}\nreturn __isg_exports;\n})()`;
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes(':') && f !== '<stdin>').map((f) => (isAbsolute(f) ? f : resolve(cwd, f)));
  if (!inputs.includes(entry)) inputs.unshift(entry);
  return { code, inputs };
}

/**
 * Reads the metadata of a bundled script (bundlePlugin's, or a prebuilt one read from disk)
 * in a throwaway isolate, unless its tag is quarantined. `source` names it in errors.
 */
export function inspectBundle(code: string, source: string, inputs: readonly string[]): PluginInfo {
  const tag = moduleTag(code);
  if (refused.has(tag)) throw new Error('quarantined: loading this module wedged a worker');
  beacon.loading(tag, source);
  try {
    return { ...inspect(code, source), inputs };
  } finally {
    beacon.leave();
  }
}

const KONG_ADAPTER = resolve(import.meta.dirname, '..', 'pdk-bridge', 'kong-js', 'adapter.ts');
const KONG_SHAPE = /\bmodule\.exports\b[\s\S]*\bPlugin\b/;

/**
 * A kong-js-pdk module (`module.exports = { Plugin, ... }`) is bundled behind the adapter
 * (pdk-bridge/kong-js/adapter.ts), which makes it an Isogate module inside the isolate; its
 * default name is the file's, as kong-js-pdk's. Any other module is bundled as it is. (A
 * module that only looks like one passes through the adapter unchanged.)
 */
async function kongEntry(entry: string): Promise<{ contents: string; resolveDir: string; sourcefile: string; loader: 'js' } | null> {
  if (!/\.[cm]?[jt]s$/.test(entry)) return null;
  const text = await readFile(entry, 'utf8');
  if (!KONG_SHAPE.test(text)) return null;
  const name = basename(entry, extname(entry));
  const contents = `const { adaptKongModule } = require(${JSON.stringify(KONG_ADAPTER)});\nmodule.exports = adaptKongModule(require(${JSON.stringify(entry)}), ${JSON.stringify(name)});\n`;
  return { contents, resolveDir: dirname(entry), sourcefile: `kong-js:${name}`, loader: 'js' };
}

/** A plugin that esbuild could not bundle; the message is esbuild's whole report, over several lines. */
export class PluginBuildError extends Error {
  override name = 'PluginBuildError';
}

/**
 * esbuild's own rendering of each build error (file:line:column, the source line with a
 * caret, what is wrong, its notes), with the file made absolute: the plugin author sees
 * what esbuild would print, not just "Build failed with 1 error".
 */
async function buildError(err: unknown): Promise<Error> {
  const errors = (err as Partial<BuildFailure>).errors;
  if (!Array.isArray(errors) || errors.length === 0) return err as Error;
  const located = errors.map((m) => (m.location === null ? m : { ...m, location: { ...m.location, file: resolve(m.location.file) } }));
  const text = await formatMessages(located, { kind: 'error', color: false });
  const lines = text.join('').split('\n').filter((l) => l.trim() !== '');
  return new PluginBuildError(`build failed with ${errors.length} error${errors.length === 1 ? '' : 's'}\n${lines.join('\n')}`);
}

/** How long a module's top-level code may run while it is inspected at config load. */
const INSPECT_TIMEOUT_MS = 1000;

/**
 * Reads a module's metadata in a throwaway isolate made like a tenant's (the PDK runtime
 * loaded, the same builtins removed), through the runtime's own loader: the module's code
 * runs inside a catch in the isolate, which hands back only a capped string, under a
 * timeout. The host never reads a value the plugin made, so a module that throws a Proxy,
 * an Error with looping getters or a huge message cannot hang or fool the load.
 */
function inspect(code: string, source: string): Omit<PluginInfo, 'inputs'> {
  const { isolate, api } = createBlank(32);
  try {
    let meta: unknown;
    try {
      const mod = prepareModule(isolate, code, `plugin:${source}`);
      const load = api.getSync('load', { reference: true }) as ivm.Reference<(i: number, f: unknown, k: unknown) => string | number>;
      const failure: unknown = load.applySync(undefined, [0, mod.factory.derefInto(), mod.kit.derefInto()], { timeout: INSPECT_TIMEOUT_MS });
      if (typeof failure === 'string' && failure !== '') throw new PluginLoadError(`its top-level code threw: ${failure}`);
      const info = api.getSync('info', { reference: true }) as ivm.Reference<(i: number) => string>;
      meta = info.applySync(undefined, [0], { timeout: INSPECT_TIMEOUT_MS });
    } catch (err) {
      // Every error here is isolated-vm's or ours: the runtime catches whatever plugin code throws.
      if (err instanceof PluginLoadError) throw err;
      const message = String((err as Error).message);
      if (/timed out/i.test(message)) throw new PluginLoadError(`its top-level code (or what it threw) ran for more than ${INSPECT_TIMEOUT_MS} ms`);
      if (/memory limit/i.test(message)) throw new PluginLoadError('its top-level code reached the memory limit of the inspection isolate');
      throw new PluginLoadError(`its code could not run: ${message.slice(0, 300)}`);
    }
    if (typeof meta !== 'string' || meta === '') throw new Error('the module exports nothing (expected name, version, priority and phase handlers)');
    const m = JSON.parse(meta) as { name: unknown; version: unknown; priority: unknown; handlers: string; reads: string; readsResponse?: unknown; http?: unknown };
    if (typeof m.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(m.name)) throw new Error('export `name` must be a lowercase name like "correlation-id"');
    if (typeof m.version !== 'string' || m.version === '') throw new Error('export `version` must be a non-empty string');
    if (typeof m.priority !== 'number' || !Number.isInteger(m.priority)) throw new Error('export `priority` must be an integer');
    const handlers = m.handlers === '' ? [] : m.handlers.split(',');
    if (handlers.length === 0) throw new Error(`the module exports no phase handler (one of ${HANDLER_NAMES.join(', ')})`);
    // Kong's rule: the response phase sees the whole response; a plugin cannot also filter it as it streams.
    const excluded = handlers.filter((h) => (HANDLER_PHASE[h] & PHASE_MASKS.EXCLUDED_BY_RESPONSE) !== 0);
    if (handlers.includes('response') && excluded.length > 0) throw new Error(`plugin ${m.name} exports response and ${excluded.join(' and ')}: a plugin with a response handler cannot also have headerFilter or bodyFilter`);
    if (m.reads === 'invalid') throw new Error("export `reads` must be ['body'] or absent");
    if (typeof m.readsResponse !== 'boolean') throw new Error('export `readsResponse` must be true, false or absent');
    if (m.readsResponse === false && !handlers.includes('headerFilter')) throw new Error('export `readsResponse` = false says what the headerFilter reads, and the module exports none');
    const httpHosts = Array.isArray(m.http) ? m.http.filter((h): h is string => typeof h === 'string') : null;
    return { name: m.name, version: m.version, priority: m.priority, handlers, reads: m.reads === 'body' ? ['body'] : [], readsResponse: m.readsResponse, httpHosts, code, source };
  } finally {
    if (!isolate.isDisposed) isolate.dispose();
  }
}

/** A module whose code failed at load; the message says how, never with a value the plugin made except a capped string. */
class PluginLoadError extends Error {}
