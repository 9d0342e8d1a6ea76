import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** `isogate plugin new|build|test` through the real CLI (bin/isogate.js) in child processes. */
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'isogate.js');

type Run = { code: number; stdout: string; stderr: string };

function isogate(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--no-node-snapshot', BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

const cwd = mkdtempSync(join(tmpdir(), 'isogate-cli-'));

describe('isogate plugin', () => {
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('new scaffolds a folder whose own test passes under `plugin test`, and a broken one fails', async () => {
    const made = await isogate(['plugin', 'new', 'add-greeting'], cwd);
    expect(made.stderr).toBe('');
    expect(made.code).toBe(0);
    const dir = join(cwd, 'add-greeting');
    for (const f of ['plugin.json', 'schema.json', 'handler.ts', 'handler.test.ts']) expect(existsSync(join(dir, f))).toBe(true);
    expect(readFileSync(join(dir, 'handler.ts'), 'utf8')).toContain("import type { Pdk } from 'isogate/pdk'");

    const passed = await isogate(['plugin', 'test', 'add-greeting'], cwd);
    expect(passed.stdout).toMatch(/pass 2\b/);
    expect(passed.stdout).toMatch(/fail 0\b/);
    expect(passed.code).toBe(0);

    // The test really runs the plugin: break the handler and it fails.
    const handler = join(dir, 'handler.ts');
    writeFileSync(handler, readFileSync(handler, 'utf8').replace('config.value)', "config.value + '!')"));
    const failed = await isogate(['plugin', 'test', 'add-greeting'], cwd);
    expect(failed.stdout).toMatch(/fail 2\b/);
    expect(failed.code).not.toBe(0);
  });

  it('new refuses a bad name and an existing folder', async () => {
    const bad = await isogate(['plugin', 'new', 'Bad_Name'], cwd);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('a plugin name is lowercase letters, digits and dashes');
    await isogate(['plugin', 'new', 'twice'], cwd);
    const again = await isogate(['plugin', 'new', 'twice'], cwd);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
  });

  it('build writes dist/plugin.js and dist/build.json; a syntax error is reported as file:line:col', async () => {
    await isogate(['plugin', 'new', 'builder'], cwd);
    const dir = join(cwd, 'builder');
    const ok = await isogate(['plugin', 'build', 'builder'], cwd);
    expect(ok.stdout).toContain('built builder@0.1.0: builder/dist/plugin.js');
    expect(ok.stderr).toBe(''); // the scaffold type-checks against isogate/pdk
    expect(ok.code).toBe(0);
    expect(readFileSync(join(dir, 'dist', 'plugin.js'), 'utf8')).toContain('setHeader');
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'dist', 'build.json'), 'utf8')).sources)).toEqual(['handler.ts']);

    writeFileSync(join(dir, 'handler.ts'), readFileSync(join(dir, 'handler.ts'), 'utf8').replace('export function access', 'export function access(('));
    const broken = await isogate(['plugin', 'build', 'builder'], cwd);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('build failed with 1 error');
    expect(broken.stderr).toContain(`${join(dir, 'handler.ts')}:11:`);
  });

  it('build reports a type error as a warning with file:line:col, and a mismatch with plugin.json as an error', async () => {
    await isogate(['plugin', 'new', 'typed'], cwd);
    const dir = join(cwd, 'typed');
    const handler = join(dir, 'handler.ts');
    writeFileSync(handler, readFileSync(handler, 'utf8').replace('pdk.serviceRequest.setHeader', 'pdk.serviceRequest.setHedaer'));
    const typo = await isogate(['plugin', 'build', 'typed'], cwd);
    expect(typo.code).toBe(0);
    expect(typo.stderr).toMatch(new RegExp(`${handler.replaceAll('/', '\\/')}:12:\\d+: TS2551: .*setHedaer`));
    writeFileSync(join(dir, 'plugin.json'), readFileSync(join(dir, 'plugin.json'), 'utf8').replace('"0.1.0"', '"0.2.0"'));
    const mismatch = await isogate(['plugin', 'build', 'typed'], cwd);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain('version: plugin.json says "0.2.0", the module exports "0.1.0"');
  });

  it('prints its usage, and exits 2 on an unknown command', async () => {
    expect((await isogate(['plugin', '--help'], cwd)).stdout).toContain('usage: isogate plugin <command>');
    const unknown = await isogate(['plugin', 'publish', 'x'], cwd);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "plugin publish"');
  });
});
