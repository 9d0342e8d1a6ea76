import { readdir } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join, relative, resolve } from 'node:path';
import { PluginBuildError } from '../../sandbox/plugin-loader.ts';
import { buildPluginFolder } from './build.ts';
import { scaffoldPlugin } from './scaffold.ts';

export const PLUGIN_USAGE = `usage: isogate plugin <command>

  new <name>     scaffold a plugin folder ./<name>: plugin.json, schema.json, handler.ts
                 and a test that passes
  build <dir>    bundle the plugin with esbuild into <dir>/dist/plugin.js (the gateway then
                 loads it while the sources are unchanged); errors as file:line:col,
                 TypeScript type errors as warnings
  test <dir>     run the plugin's tests (*.test.ts, node:test) with isogate/testing: each
                 runs the plugin in a real gateway and sandbox, with the real limits
`;

/** `isogate plugin ...`; returns the exit code. */
export async function pluginCommand(args: readonly string[]): Promise<number> {
  const [command, target, ...rest] = args;
  if (command === undefined || command === '--help' || command === 'help') {
    process.stdout.write(PLUGIN_USAGE);
    return command === undefined ? 2 : 0;
  }
  if (target === undefined || rest.length > 0 || !['new', 'build', 'test'].includes(command)) {
    process.stderr.write(`${command === undefined || !['new', 'build', 'test'].includes(command) ? `unknown command "plugin ${command}"` : `plugin ${command} takes one argument`}\n\n${PLUGIN_USAGE}`);
    return 2;
  }
  try {
    if (command === 'new') return await newPlugin(target);
    if (command === 'build') return await build(target);
    return await runTests(target);
  } catch (err) {
    process.stderr.write(`${err instanceof PluginBuildError ? err.message : (err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}

async function newPlugin(name: string): Promise<number> {
  const dir = await scaffoldPlugin(name, process.cwd());
  process.stdout.write(`created ${relative(process.cwd(), dir)}/: plugin.json, schema.json, handler.ts, handler.test.ts\n  isogate plugin test ${name}\n`);
  return 0;
}

async function build(target: string): Promise<number> {
  const built = await buildPluginFolder(target);
  process.stdout.write(`built ${built.info.name}@${built.info.version}: ${relative(process.cwd(), built.bundleFile)} (${built.bytes} bytes, ${built.info.inputs.length} source file${built.info.inputs.length === 1 ? '' : 's'})\n`);
  const { typeCheckPluginsApart } = await import('../config/typecheck.ts');
  const types = await typeCheckPluginsApart([built.info.source]);
  const warnings = 'skipped' in types ? [`type checking skipped: ${types.skipped}`] : types.warnings;
  if (warnings.length > 0) process.stderr.write(`warnings:\n  ${warnings.map((w) => w.replaceAll('\n', '\n    ')).join('\n  ')}\n`);
  return 0;
}

const SKIP = new Set(['node_modules', 'dist']);

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || SKIP.has(e.name)) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await testFiles(path)));
    else if (/\.test\.(?:ts|mts|js|mjs)$/.test(e.name)) out.push(path);
  }
  return out.sort();
}

/**
 * Node's own test runner, in one process (isolation none: the sandbox's isolated-vm and the
 * resolve hook load once), with `isogate/...` resolved to this isogate.
 */
async function runTests(target: string): Promise<number> {
  const dir = resolve(target);
  const files = await testFiles(dir);
  if (files.length === 0) throw new Error(`${dir}: no test files (*.test.ts)`);
  const hook = new URL('./resolve-hook.ts', import.meta.url).href;
  const child = spawn(process.execPath, ['--no-node-snapshot', '--import', hook, '--test', '--test-isolation=none', ...files], { cwd: dir, stdio: 'inherit' });
  return new Promise((done) => child.on('exit', (code, signal) => done(code ?? (signal !== null ? 1 : 0))));
}
