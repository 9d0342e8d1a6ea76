import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `import type { Pdk } from 'isogate/pdk'` resolves through package.json `exports` for a
 * project outside the repository: a temp project with isogate linked into its node_modules
 * (what `npm link isogate` or a file: dependency makes), type-checked by tsc.
 */
const REPO = join(import.meta.dirname, '..', '..');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

const HANDLER = `import type { ConfigureHandler, Pdk, PluginModule } from 'isogate/pdk';
export const name = 'ext';
export const version = '1.0.0';
export const priority = 10;
export function access(pdk: Pdk): void {
  pdk.serviceRequest.setHeader('x-ext', pdk.request.getMethod());
}
export const configure: ConfigureHandler<{ n: number }> = (pdk, configs) => {
  pdk.log.info(pdk.node.getId(), configs.map((c) => c.n));
};
export const asModule = { name, version, priority, access, configure } satisfies PluginModule<{ n: number }>;
`;

function tsc(project: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, '-p', project], (err, stdout, stderr) => resolve({ code: err === null ? 0 : 1, out: stdout + stderr }));
  });
}

const root = mkdtempSync(join(tmpdir(), 'isogate-external-'));

describe('isogate/pdk from a project outside the repository', () => {
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  for (const resolution of ['bundler', 'nodenext'] as const) {
    it(`type-checks a plugin (moduleResolution ${resolution}), and catches a misspelt PDK call`, async () => {
      const dir = join(root, resolution);
      mkdirSync(join(dir, 'node_modules'), { recursive: true });
      symlinkSync(REPO, join(dir, 'node_modules', 'isogate'), 'dir');
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ext-plugin', private: true, type: 'module' }));
      const options = { strict: true, noEmit: true, target: 'es2023', lib: ['es2024'], types: [], module: resolution === 'bundler' ? 'preserve' : 'nodenext', moduleResolution: resolution };
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['handler.ts'] }));
      writeFileSync(join(dir, 'handler.ts'), HANDLER);
      const good = await tsc(dir);
      expect(good.out).toBe('');
      expect(good.code).toBe(0);
      // The types are the real ones, not `any`: a typo is an error.
      writeFileSync(join(dir, 'handler.ts'), HANDLER.replace('setHeader', 'setHedaer'));
      const bad = await tsc(dir);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/handler\.ts\(6,22\): error TS2551: Property 'setHedaer' does not exist/);
      // configure's pdk has no request: reading it there is a type error too.
      writeFileSync(join(dir, 'handler.ts'), HANDLER.replace('pdk.node.getId()', 'pdk.request.getMethod()'));
      const noRequest = await tsc(dir);
      expect(noRequest.code).toBe(1);
      expect(noRequest.out).toMatch(/handler\.ts\(9,20\): error TS2339: Property 'request' does not exist on type 'ConfigurePdk'/);
    });
  }
});
