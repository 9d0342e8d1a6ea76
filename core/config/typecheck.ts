import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Type-checks plugin entry files for `isogate --check`, with the TypeScript compiler API
 * (TypeScript 7's `typescript/unstable/sync`, which drives the native compiler). Bundling
 * with esbuild only strips types, so without this a plugin that calls
 * `pdk.response.setHedaer()` or passes a number where the PDK takes a string loads fine and
 * fails on its first request.
 *
 * The plugins are checked as the isolate runs them: strict, with the standard library only
 * (no DOM, no Node types: inside the isolate there is no `console`, `process` or timers) and
 * against the PDK types they import from pdk-bridge/types.ts. Only TypeScript entries are
 * checked; plain JavaScript plugins are not. The result is advisory: warnings, never a
 * reason to refuse a config (esbuild decides what builds).
 */
export type TypeCheckResult = { readonly checked: number; readonly warnings: readonly string[] } | { readonly skipped: string };

const TS_ENTRY = /\.(?:ts|mts|cts|tsx)$/;

const COMPILER_OPTIONS = {
  strict: true,
  noEmit: true,
  target: 'es2023',
  lib: ['es2024'],
  module: 'preserve',
  moduleResolution: 'bundler',
  allowImportingTsExtensions: true,
  types: [],
  skipLibCheck: true,
  // A plugin folder outside the repository imports the types as `isogate/pdk` (package.json
  // `exports`) without installing isogate: they resolve to these.
  paths: { 'isogate/pdk': [join(import.meta.dirname, '..', '..', 'pdk-bridge', 'types.ts')] },
};

/** What this module reads of the compiler's diagnostics (category 0 warning, 1 error). */
type Diagnostic = {
  readonly fileName?: string | undefined;
  readonly pos: number;
  readonly code: number;
  readonly category: number;
  readonly text: string;
  readonly messageChain?: readonly Diagnostic[] | undefined;
};

/** `file:line:col: TS1234: message`, with the chain of reasons indented below. */
function format(d: Diagnostic, text: string | undefined): string {
  let where = d.fileName ?? 'tsconfig';
  if (d.fileName !== undefined && text !== undefined) {
    let line = 1;
    let lineStart = 0;
    for (let i = text.indexOf('\n'); i >= 0 && i < d.pos; i = text.indexOf('\n', i + 1)) {
      line++;
      lineStart = i + 1;
    }
    where = `${d.fileName}:${line}:${d.pos - lineStart + 1}`;
  }
  let message = d.text;
  // TypeScript suggests adding the DOM library; the isolate has no console at all.
  if (d.code === 2584 && /'console'/.test(message)) message = "Cannot find name 'console': plugin code has no console, use pdk.log";
  const chain: string[] = [];
  const walk = (list: readonly Diagnostic[] | undefined, depth: number) => {
    for (const c of list ?? []) {
      chain.push(`${'  '.repeat(depth)}${c.text}`);
      walk(c.messageChain, depth + 1);
    }
  };
  walk(d.messageChain, 1);
  return [`${where}: TS${d.code}: ${message}`, ...chain].join('\n');
}

/**
 * Type-checks the TypeScript files among `entries` (absolute paths) and what they import.
 * Never throws: if TypeScript cannot be loaded or run, says why in `skipped`.
 *
 * @example
 *   const r = await typeCheckPlugins(['/etc/isogate/plugins/auth.ts']);
 *   if ('skipped' in r) console.warn(r.skipped); else for (const w of r.warnings) console.warn(w);
 */
export async function typeCheckPlugins(entries: readonly string[]): Promise<TypeCheckResult> {
  const files = [...new Set(entries.filter((e) => TS_ENTRY.test(e)))];
  if (files.length === 0) return { checked: 0, warnings: [] };
  let API: typeof import('typescript/unstable/sync').API;
  try {
    ({ API } = await import('typescript/unstable/sync'));
  } catch (err) {
    return { skipped: `the TypeScript compiler could not be loaded (${(err as Error).message.split('\n')[0]}); it is a devDependency, so install without --omit=dev` };
  }
  const dir = await mkdtemp(join(tmpdir(), 'isogate-typecheck-'));
  let api: InstanceType<typeof API> | null = null;
  try {
    const project = join(dir, 'tsconfig.json');
    await writeFile(project, JSON.stringify({ compilerOptions: COMPILER_OPTIONS, files }));
    api = new API({ cwd: dir });
    const program = api.updateSnapshot({ openProjects: [project] }).getProject(project)?.program;
    if (program === undefined) return { skipped: 'the TypeScript compiler did not open the plugins as a project' };
    const diagnostics: Diagnostic[] = [
      ...program.getConfigFileParsingDiagnostics(),
      ...program.getProgramDiagnostics(),
      ...program.getSyntacticDiagnostics(),
      ...program.getSemanticDiagnostics(),
    ];
    const texts = new Map<string, string | undefined>();
    const warnings: string[] = [];
    const seen = new Set<string>();
    const sorted = diagnostics
      .filter((d) => d.category === 0 || d.category === 1) // warnings and errors; not suggestions
      .sort((a, b) => (a.fileName ?? '').localeCompare(b.fileName ?? '') || a.pos - b.pos);
    for (const d of sorted) {
      if (d.fileName !== undefined && !texts.has(d.fileName)) texts.set(d.fileName, await readFile(d.fileName, 'utf8').catch(() => undefined));
      const line = format(d, d.fileName === undefined ? undefined : texts.get(d.fileName));
      if (!seen.has(line)) warnings.push(line);
      seen.add(line);
    }
    return { checked: files.length, warnings };
  } catch (err) {
    return { skipped: `the TypeScript compiler failed: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    try {
      api?.close();
    } catch {
      /* the compiler process is already gone */
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * typeCheckPlugins in a child process. TypeScript 7's API spawns the native compiler with
 * its stderr inherited, and that process writes Go's "context canceled" there when the API
 * closes it, at random: `--check` must print only our own lines, so the check runs where
 * its stderr can be dropped, and its result comes back as JSON on stdout.
 */
export function typeCheckPluginsApart(entries: readonly string[]): Promise<TypeCheckResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...process.execArgv, import.meta.filename, ...entries], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      try {
        resolve(JSON.parse(stdout) as TypeCheckResult);
      } catch {
        resolve({ skipped: `the type checker's process failed${err !== null ? `: ${err.message.split('\n')[0]}` : ''}` });
      }
    });
  });
}

if (process.argv[1] === import.meta.filename) {
  process.stdout.write(JSON.stringify(await typeCheckPlugins(process.argv.slice(2))));
}
