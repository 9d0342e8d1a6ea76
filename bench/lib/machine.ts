import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

function version(pkg: string): string | null {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

function firstLine(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error !== undefined || r.status === null) return null;
  return `${r.stdout}${r.stderr}`.split('\n')[0].trim() || null;
}

export function hostId(): string {
  let mid = '';
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    if (existsSync(f)) {
      mid = readFileSync(f, 'utf8').trim();
      break;
    }
  }
  return createHash('sha256').update(`${hostname()}\0${mid}`).digest('hex').slice(0, 6);
}

export type Machine = ReturnType<typeof machineInfo>;

export function machineInfo(allowed: readonly number[]) {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m !== null) model = m[1].trim();
  } catch {
    // not Linux
  }
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
  return {
    hostId: hostId(),
    cpuModel: model,
    cores: cpus().length,
    coresAllowed: allowed.length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    versions: {
      isogate: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
      'isolated-vm': version('isolated-vm'),
      undici: version('undici'),
      esbuild: version('esbuild'),
      autocannon: version('autocannon'),
      fastify: version('fastify'),
      '@fastify/http-proxy': version('@fastify/http-proxy'),
      '@fastify/reply-from': version('@fastify/reply-from'),
      wrk: firstLine('wrk', ['-v'])?.replace(/\s*Copyright.*$/, '').replace(/^wrk\s+/, '') ?? null,
      nginx: firstLine('nginx', ['-v'])?.replace(/^nginx version:\s*nginx\//, '') ?? null,
    },
    git: {
      commit: git.status === 0 ? git.stdout.trim() : null,
      dirty: dirty.status === 0 ? dirty.stdout.trim() !== '' : null,
    },
  };
}
