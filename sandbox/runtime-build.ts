import { join, resolve } from 'node:path';
import { buildSync } from 'esbuild';
import { OUTPUT_CAPS } from './limits.ts';
import { NODE_INFO } from '../pdk-bridge/host/node.ts';

const RUNTIME_DIR = join(import.meta.dirname, '..', 'pdk-bridge', 'runtime');

/** How the bundle ends: its one export, which the wrapper turns into the function body's result. */
const EXPORT_API = /\nexport \{\n {2}api\n\};\n$/;

/**
 * The in-isolate runtime as one script: the modules of pdk-bridge/runtime, from their
 * entry index.ts (which exports the dispatcher's `api`), bundled by esbuild and wrapped in
 * a strict function whose result is that api. `CAPS` (the output caps of sandbox/limits.ts)
 * and `NODE` (what pdk.node says of this gateway) are esbuild `define`s: each becomes one
 * object of the bundle, written once. The phase table is imported as a module
 * (pdk-bridge/phases.ts), so it is bundled in. Modules share state as ESM bindings: in one
 * bundle they are variables of the one function.
 *
 * Target es2024: esbuild then emits the modules' own syntax (spread, classes, optional
 * chaining) and no helpers of its own, which would call builtins a plugin could patch;
 * esm output, so no `__export` getters either (test/sandbox/runtime-build.test.ts).
 * `dir`: pdk-bridge/runtime (another only in tests). Throws the build's errors: the
 * gateway fails at start, not at its first request.
 */
export function buildRuntime(dir: string = RUNTIME_DIR): { text: string; inputs: string[] } {
  const out = buildSync({
    metafile: true,
    entryPoints: [join(dir, 'index.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2024',
    platform: 'neutral',
    write: false,
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'silent',
    define: { CAPS: JSON.stringify(OUTPUT_CAPS), NODE: JSON.stringify(NODE_INFO) },
  });
  const text = out.outputFiles[0].text;
  if (!EXPORT_API.test(text)) throw new Error('pdk-bridge/runtime: the bundle must end with the one export `api`');
  // the files bundled (relative to the working directory, as esbuild names them): what a cache of the bundle depends on
  const inputs = Object.keys(out.metafile!.inputs).filter((f) => !f.startsWith('<')).map((f) => resolve(f)).sort(); // not the `<define:...>` entries
  return { text: `(function () {\n'use strict';\n${text.replace(EXPORT_API, '\nreturn api;\n')}})()`, inputs };
}
