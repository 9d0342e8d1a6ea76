import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The bench harness cannot rot: its --smoke mode (about a second per scenario, numbers
 * meaningless and never asserted) runs every scenario end to end and writes a report.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const SCENARIOS = [
  'direct', 'node-proxy', 'fastify', 'fastify-onsend', 'nginx', 'openresty', 'naive-ivm', 'proxy-0', 'proxy-0-nolog', 'plugins-1', 'plugins-5', 'plugins-10',
  'body-filter', 'tenants-1000', 'cold-start', 'noisy-neighbour', 'noisy-10', 'solo-2ms', 'multi-core',
];

describe('bench --smoke', () => {
  const out = mkdtempSync(join(tmpdir(), 'isogate-bench-smoke-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every scenario and writes the report', { timeout: 150_000 }, async () => {
    const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'bench', 'run.ts'), '--smoke', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d));
    child.stderr.on('data', (d: Buffer) => (log += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, log).toBe(0);
    for (const f of ['report.md', 'report.json', 'throughput.svg', 'overhead.svg']) expect(existsSync(join(out, f)), f).toBe(true);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
      scenarios: { name: string; status: string; reason: string | null }[];
      machine: { cpuModel: string; git: { commit: string | null } };
      loadGenerator: { tool: string };
    };
    const names = report.scenarios.map((s) => s.name);
    for (const s of SCENARIOS) expect(names, `scenario ${s} has a row`).toContain(s);
    for (const s of report.scenarios) {
      expect(['ok', 'skipped'], `${s.name}: ${s.status} ${s.reason ?? ''}\n${log}`).toContain(s.status);
      if (s.status === 'skipped') expect(s.reason, s.name).toBeTruthy();
    }
    expect(['autocannon', 'wrk']).toContain(report.loadGenerator.tool);
    expect(readFileSync(join(out, 'throughput.svg'), 'utf8')).toMatch(/^<svg /);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    for (const s of SCENARIOS) expect(md).toContain(`| ${s} |`);
  });
});
