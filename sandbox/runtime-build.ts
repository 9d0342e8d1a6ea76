import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { OUTPUT_CAPS } from './limits.ts';
import { NODE_INFO } from '../pdk-bridge/host/node.ts';

const RUNTIME_DIR = join(import.meta.dirname, '..', 'pdk-bridge', 'runtime');

/** How the bundle ends: its one export, which the wrapper turns into the function body's result. */
const EXPORT_API = /\nexport \{\n {2}api\n\};\n$/;

/**
 * The in-isolate runtime as one script: the modules of pdk-bridge/runtime bundled by
 * esbuild, wrapped in a strict function whose result is the runtime's api. `CAPS` (the
 * output caps of sandbox/limits.ts) and `NODE` (what pdk.node says of this gateway) are
 * esbuild `define`s: each becomes one object of the bundle, written once. The phase table
 * is imported as a module (pdk-bridge/phases.ts), so it is bundled in.
 *
 * The modules (`*.ts`) import each other. The files not yet made modules (`*.js`) are
 * concatenated in name order into one more module, the entry, which imports every export of
 * the modules and ends with `export { api }`.
 *
 * Target es2024: esbuild then emits the modules' own syntax (spread, classes, optional
 * chaining) and no helpers of its own, which would call builtins a plugin could patch.
 * `dir`: pdk-bridge/runtime (another only in tests). Throws the build's errors: the
 * gateway fails at start, not at its first request.
 */
export function buildRuntime(dir: string = RUNTIME_DIR): string {
  const names = readdirSync(dir).sort();
  // prelude.ts first: it captures the intrinsics before anything else runs; then lockdown.ts.
  const first = (f: string) => (f === 'prelude.ts' ? 0 : f === 'lockdown.ts' ? 1 : 2);
  const modules = names.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort((a, b) => first(a) - first(b));
  const scripts = names.filter((f) => f.endsWith('.js'));
  // The files not yet made modules share one scope, which imports every module's exports.
  const exported = exportsOf(dir, modules);
  const imports = modules.map((f) => `import { ${(exported.get(f) ?? []).join(', ')} } from './${f}';\n`);
  const contents = `${imports.join('')}import { RUNTIME_PHASES as PHASES } from '../phases.ts';\n${scripts
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n')}`;
  const out = buildSync({
    stdin: { contents, resolveDir: dir, sourcefile: 'runtime.js', loader: 'js' },
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
  return `(function () {\n'use strict';\n${text.replace(EXPORT_API, '\nreturn api;\n')}})()`;
}

/** What each runtime module of `dir` exports (esbuild's own reading of them), by file name. */
function exportsOf(dir: string, files: string[]): Map<string, string[]> {
  const { metafile } = buildSync({
    entryPoints: files.map((f) => join(dir, f)),
    outdir: 'out',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const byFile = new Map<string, string[]>();
  for (const o of Object.values(metafile.outputs)) {
    if (o.entryPoint !== undefined) byFile.set(o.entryPoint.slice(o.entryPoint.lastIndexOf('/') + 1), o.exports);
  }
  return byFile;
}
