// The in-isolate runtime as esbuild bundles it (sandbox/runtime-build.ts): one strict
// function returning the api, none of esbuild's helpers (they call builtins a plugin could
// patch, or define getters), the caps and the phase table once; a broken module fails the
// build with its name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { describe, expect, it } from 'vitest';
import { buildRuntime } from '../../sandbox/runtime-build.ts';

describe('the runtime bundle', () => {
  const source = buildRuntime().text;

  it('is one strict function body whose result is the api', () => {
    expect(source.startsWith("(function () {\n'use strict';\n")).toBe(true);
    expect(source.endsWith('\nreturn api;\n})()')).toBe(true);
    expect(source).not.toMatch(/^\s*(?:export|import)\b/m);
  });

  it('holds none of esbuild\'s helpers', () => {
    for (const helper of ['__spreadValues', '__spreadProps', '__export', '__defProp', '__toESM', '__toCommonJS', '__publicField', '__async', '__objRest', '__privateGet']) {
      expect(source, helper).not.toContain(helper);
    }
  });

  it('writes the caps and the node info once, and bundles the phase table', () => {
    expect(source.match(/var define_CAPS_default = /g)).toHaveLength(1);
    expect(source.match(/var define_NODE_default = /g)).toHaveLength(1);
    expect(source).toContain('// pdk-bridge/phases.ts');
  });

  it('evaluates in a fresh context to the api', () => {
    const isolate = new ivm.Isolate({ memoryLimit: 16 });
    try {
      const context = isolate.createContextSync();
      const keys = context.evalSync(`Object.keys(${source}).sort().join()`) as string;
      for (const k of ['attach', 'exercise', 'load', 'phases', 'run', 'runBatch', 'setup']) expect(keys.split(',')).toContain(k);
    } finally {
      isolate.dispose();
    }
  });

  it('fails with the file and the error when a module does not build', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isogate-runtime-'));
    try {
      writeFileSync(join(dir, 'index.ts'), "export { api } from './broken.ts';\n");
      writeFileSync(join(dir, 'broken.ts'), 'export const api = ;\n');
      expect(() => buildRuntime(dir)).toThrow(/broken\.ts.*Unexpected/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
