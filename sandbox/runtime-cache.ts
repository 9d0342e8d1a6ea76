import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { version as esbuildVersion } from 'esbuild';
import { NODE_INFO } from '../pdk-bridge/host/node.ts';
import { OUTPUT_CAPS } from './limits.ts';
import { buildRuntime } from './runtime-build.ts';

// Every worker process loads the runtime when it starts, and a replacement worker's start is
// what a tenant waits for after a crash: esbuild's ~80 ms are paid once per source version,
// not once per process. The cache is the bundle and the files it was made of; it is used
// only when all of them hash as they did, so no change of the runtime's sources (or of an
// import they add) can run a stale bundle.
const ROOT = join(import.meta.dirname, '..');
const CACHE_FILE = join(ROOT, 'node_modules', '.cache', 'isogate', 'runtime.json');

/**
 * `root` is the checkout the bundle was built from: a node_modules shared by two checkouts
 * (a symlink) holds one cache, whose inputs are the other checkout's files; they hash as
 * they did, yet are not this checkout's sources.
 */
type Cached = { root: string; inputs: string[]; hash: string; text: string };

function hashOf(inputs: readonly string[], salt: string): string | null {
  const h = createHash('sha256').update(salt).update(esbuildVersion);
  try {
    for (const f of inputs) h.update(f).update('\0').update(readFileSync(f)).update('\0');
  } catch {
    return null; // an input is gone: build again
  }
  return h.digest('hex');
}

/**
 * The runtime bundle (sandbox/runtime-build.ts), from the cache when its inputs are
 * unchanged; built and cached otherwise. The caps and node info written into the bundle
 * are part of the key. A cache that cannot be read or written is only skipped. `cacheFile`:
 * the checkout's, unless a test gives its own.
 */
export function loadRuntime(cacheFile = CACHE_FILE): string {
  const salt = JSON.stringify([OUTPUT_CAPS, NODE_INFO]);
  try {
    const c = JSON.parse(readFileSync(cacheFile, 'utf8')) as Cached;
    if (c.root === ROOT && Array.isArray(c.inputs) && typeof c.text === 'string' && hashOf(c.inputs, salt) === c.hash) return c.text;
  } catch {
    // no cache yet, or an unreadable one
  }
  const { text, inputs } = buildRuntime();
  const hash = hashOf(inputs, salt);
  if (hash !== null) {
    try {
      mkdirSync(join(cacheFile, '..'), { recursive: true });
      const tmp = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ root: ROOT, inputs, hash, text } satisfies Cached));
      renameSync(tmp, cacheFile); // atomic: concurrent workers never read half a file
    } catch {
      // read-only install: build every time
    }
  }
  return text;
}
