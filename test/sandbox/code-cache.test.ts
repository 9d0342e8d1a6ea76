// The runtime's and the realm script's V8 code caches are made after a cold start's path ran
// once in a throwaway isolate (sandbox/code-cache.ts warmCodeCaches): they hold the bytecode
// of that path, and nothing of that isolate's state reaches the blanks compiled from them.
import ivm from 'isolated-vm';
import { describe, expect, it } from 'vitest';
import { createBlank } from '../../sandbox/blank.ts';
import { REALM_CACHE, REALM_NAME, REALM_SOURCE, RUNTIME_CACHE, RUNTIME_NAME, RUNTIME_SOURCE } from '../../sandbox/code-cache.ts';

type Produced = ivm.Script & { cachedData?: ivm.ExternalCopy<ArrayBuffer>; cachedDataRejected?: boolean };

/** The cache V8 makes of `source` at compile time: its eagerly compiled functions only. */
function compileTimeCacheBytes(source: string, filename: string): number {
  const isolate = new ivm.Isolate({ memoryLimit: 16 });
  try {
    const s = isolate.compileScriptSync(source, { filename, produceCachedData: true }) as Produced;
    return s.cachedData!.copy().byteLength;
  } finally {
    isolate.dispose();
  }
}

describe('code caches made after the cold path ran', () => {
  const blank = createBlank(16);

  it('hold more than the compile-time caches (the functions that path compiled), and V8 accepts them', () => {
    expect(RUNTIME_CACHE.data).not.toBeNull();
    expect(REALM_CACHE.data).not.toBeNull();
    expect(RUNTIME_CACHE.data!.copy().byteLength).toBeGreaterThan(compileTimeCacheBytes(RUNTIME_SOURCE, RUNTIME_NAME) * 1.2);
    expect(REALM_CACHE.data!.copy().byteLength).toBeGreaterThan(compileTimeCacheBytes(REALM_SOURCE, REALM_NAME));
    const isolate = new ivm.Isolate({ memoryLimit: 16 });
    try {
      const s = isolate.compileScriptSync(RUNTIME_SOURCE, { filename: RUNTIME_NAME, cachedData: RUNTIME_CACHE.data! }) as Produced;
      expect(s.cachedDataRejected).toBe(false);
      const r = isolate.compileScriptSync(REALM_SOURCE, { filename: REALM_NAME, cachedData: REALM_CACHE.data! }) as Produced;
      expect(r.cachedDataRejected).toBe(false);
    } finally {
      isolate.dispose();
    }
  });

  it('a blank compiled from them has no module, instance or chain of the throwaway isolate', () => {
    const info = blank.api.getSync('info', { reference: true }) as ivm.Reference<(i: number) => string>;
    expect(info.applySync(undefined, [0])).toBe(''); // the warm module was registered there, not here
    const configure = blank.api.getSync('configure', { reference: true }) as ivm.Reference<(i: number, o: number) => string>;
    expect(configure.applySync(undefined, [0, 0])).toBe('["",[]]');
    const run = blank.api.getSync('run', { reference: true }) as ivm.Reference<(...a: unknown[]) => string>;
    // no chains installed: the dispatcher has nothing to run
    expect(() => run.applySync(undefined, [0, 2, '{}', '', '', ''])).toThrow();
    blank.isolate.dispose();
  });
});
