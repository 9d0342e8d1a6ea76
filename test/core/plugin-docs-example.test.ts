import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The worked example of docs/plugin-guide.md (docs/examples/api-key) runs its own tests
 * the way an author runs them: `isogate plugin test <dir>`, through the real CLI, each test
 * a real gateway and sandbox (isogate/testing). A guide whose example broke fails CI.
 */
const REPO = join(import.meta.dirname, '..', '..');

describe('docs/examples/api-key', () => {
  it("passes its own tests under `isogate plugin test`", async () => {
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--no-node-snapshot', join(REPO, 'bin', 'isogate.js'), 'plugin', 'test', join(REPO, 'docs', 'examples', 'api-key')], { cwd: REPO }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
      });
    });
    expect(run.stdout, run.stderr).toMatch(/pass 5\b/);
    expect(run.stdout).toMatch(/fail 0\b/);
    expect(run.code).toBe(0);
  });
});
