import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRuntime } from '../../sandbox/runtime-cache.ts';

// The runtime bundle's disk cache (sandbox/runtime-cache.ts), in a folder of the test's own
// (the checkout's cache is shared with every other test file running at the same time).
describe('the runtime bundle cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'isogate-runtime-cache-'));
  const file = join(dir, 'runtime.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the cached bundle while its inputs are unchanged, and not one another checkout built', () => {
    const built = loadRuntime(file);
    const cached = JSON.parse(readFileSync(file, 'utf8'));
    expect(cached.text).toBe(built);
    // a marked bundle under the same hash is what a second load returns: the cache is used
    writeFileSync(file, JSON.stringify({ ...cached, text: '/* cached */' }));
    expect(loadRuntime(file)).toBe('/* cached */');
    // the same cache made from another checkout's files (a node_modules symlinked into two trees) is not used
    writeFileSync(file, JSON.stringify({ ...cached, root: join(dir, 'another-checkout'), text: '/* cached */' }));
    expect(loadRuntime(file)).toBe(built);
    // nor one whose inputs changed since
    writeFileSync(file, JSON.stringify({ ...cached, hash: '0'.repeat(64), text: '/* cached */' }));
    expect(loadRuntime(file)).toBe(built);
  });
});
