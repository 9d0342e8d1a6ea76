import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { build } from 'esbuild';
import ivm from 'isolated-vm';
import { LRUCache } from 'lru-cache';
import type { PluginBundle } from './program.ts';
import { beacon, type ModuleTag } from './beacon.ts';

/** What the gateway learns of a plugin by loading it once in a throwaway isolate. */
export type PluginInfo = PluginBundle & {
  readonly priority: number;
  /** Phase handler names the module exports (`access`, `headerFilter`, ...). */
  readonly handlers: readonly string[];
};

export const HANDLER_NAMES = ['rewrite', 'access', 'headerFilter', 'bodyFilter', 'log'] as const;

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

/** Bundles keyed by path, size and mtime: a reload bundles only what changed. */
const bundles = new LRUCache<string, PluginInfo>({ max: 1000 });

/**
 * Bundles a plugin entry file (TypeScript or JavaScript, with its npm dependencies) into
 * one script with esbuild, then reads its metadata (`name`, `version`, `priority` and which
 * phase handlers it has) in a throwaway isolate: plugin code never runs on the host, not
 * even at load time.
 */
export async function loadPlugin(entry: string): Promise<PluginInfo> {
  const st = await stat(entry);
  const key = `${entry}\0${st.size}\0${st.mtimeMs}`;
  const cached = bundles.get(key);
  if (cached !== undefined) return cached;
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: '__isg_exports',
    platform: 'neutral',
    target: 'es2023',
    logLevel: 'silent',
    legalComments: 'none',
  });
  // The wrapper keeps the bundle's top-level `var` local and makes the exports the
  // script's completion value.
  const code = `(function () {\n${result.outputFiles[0].text}\nreturn __isg_exports;\n})()`;
  const tag = moduleTag(code);
  if (refused.has(tag)) throw new Error('quarantined: loading this module wedged a worker');
  beacon.loading(tag, entry);
  let info: PluginInfo;
  try {
    info = inspect(code, entry);
  } finally {
    beacon.leave();
  }
  bundles.set(key, info);
  return info;
}

/**
 * Reads a module's metadata in a throwaway isolate. The reader is defined before the
 * plugin's code runs and uses only intrinsics it captured then, so a module that replaces
 * JSON or Array.prototype cannot hang or fool the load (it is also under a timeout).
 */
const PROBE = `(function () {
  const stringify = JSON.stringify;
  const names = ${JSON.stringify(HANDLER_NAMES)};
  return function (e) {
    const m = e !== null && typeof e === 'object' && e.default !== undefined ? e.default : e;
    if (m === null || typeof m !== 'object') return null;
    const handlers = [];
    for (let i = 0; i < names.length; i++) if (typeof m[names[i]] === 'function') handlers[handlers.length] = names[i];
    const name = m.name, version = m.version, priority = m.priority;
    return stringify({ name: typeof name === 'string' ? name : null, version: typeof version === 'string' ? version : null,
      priority: typeof priority === 'number' ? priority : null, handlers });
  };
})()`;

function inspect(code: string, source: string): PluginInfo {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = isolate.createContextSync();
    const probe = isolate.compileScriptSync(PROBE).runSync(context, { reference: true }) as ivm.Reference<(e: unknown) => string | null>;
    const script = isolate.compileScriptSync(`${code};`, { filename: `plugin:${source}` });
    const ref = script.runSync(context, { reference: true, timeout: 1000 }) as ivm.Reference<unknown>;
    const meta = probe.applySync(undefined, [ref.derefInto()], { timeout: 1000, result: { copy: true } }) as unknown;
    if (typeof meta !== 'string') throw new Error('the module exports nothing (expected name, version, priority and phase handlers)');
    const m = JSON.parse(meta) as { name: unknown; version: unknown; priority: unknown; handlers: string[] };
    if (typeof m.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(m.name)) throw new Error('export `name` must be a lowercase name like "correlation-id"');
    if (typeof m.version !== 'string' || m.version === '') throw new Error('export `version` must be a non-empty string');
    if (typeof m.priority !== 'number' || !Number.isInteger(m.priority)) throw new Error('export `priority` must be an integer');
    if (!Array.isArray(m.handlers) || m.handlers.length === 0) throw new Error(`the module exports no phase handler (one of ${HANDLER_NAMES.join(', ')})`);
    const handlers = m.handlers.filter((h) => (HANDLER_NAMES as readonly string[]).includes(h));
    return { name: m.name, version: m.version, priority: m.priority, handlers, code, source };
  } finally {
    isolate.dispose();
  }
}
