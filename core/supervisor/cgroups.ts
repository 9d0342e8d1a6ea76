import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { WorkerState } from './types.ts';

// Memory cgroups of the supervisor's workers: the folder tree, the bound written in it, each worker's folder, and their removal.

/**
 * A memory cgroup folder for our workers, where the OS lets us make one (cgroup v2, or
 * v1's memory controller, writable by us). Null elsewhere: the supervisor's resident-size
 * check is then the only bound.
 */
export function makeCgroupRoot(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  const candidates: string[] = [];
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
      const [, controllers, path] = line.split(':');
      if (controllers === '' && existsSync('/sys/fs/cgroup/cgroup.controllers')) candidates.push(join('/sys/fs/cgroup', path));
      if (controllers.split(',').includes('memory')) candidates.push(join('/sys/fs/cgroup/memory', path));
    }
  } catch {
    return null;
  }
  for (const base of candidates) {
    removeStaleCgroups(base);
    const dir = join(base, `isogate-${pid}`);
    try {
      mkdirSync(dir);
      if (existsSync(join(dir, 'memory.max')) || existsSync(join(dir, 'memory.limit_in_bytes'))) return dir;
      rmdirSync(dir);
    } catch {
      /* not ours to write */
    }
  }
  return null;
}

/**
 * Removes an empty cgroup folder. The kernel refuses while a dead worker is still being
 * reaped, so it retries for up to two seconds; resolves either way.
 */
export function removeCgroup(dir: string): Promise<void> {
  return new Promise((resolve) => {
    const attempt = (n: number) => {
      try {
        rmdirSync(dir);
        resolve();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || n === 0) resolve();
        else setTimeout(() => attempt(n - 1), 100);
      }
    };
    attempt(20);
  });
}

/**
 * Folders `isogate-<pid>` under `base` left by a gateway that did not stop cleanly (its
 * pid is gone): their empty worker folders, then the folder itself. A folder that still
 * holds a live process is refused by the kernel and stays.
 */
function removeStaleCgroups(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^isogate-(\d+)$/.exec(name);
    if (m === null || pidAlive(Number(m[1]))) continue;
    const dir = join(base, name);
    try {
      for (const sub of readdirSync(dir)) if (sub.startsWith('worker-')) rmdirSync(join(dir, sub));
      rmdirSync(dir);
    } catch {
      /* busy or not ours: left alone */
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Below memory.max, cgroup v2 reclaims and slows a worker's growth instead of killing it. */
const MEMORY_HIGH_FRACTION = 0.9;

/**
 * The worker's memory bound in its cgroup folder. cgroup v2: memory.max (the kernel kills
 * the worker above it), memory.high at 90 % of it (the kernel throttles and reclaims the
 * worker first, so a burst grows slower and the supervisor's resident-size check has time
 * to act), and no swap (a worker must not escape its bound into swap). cgroup v1:
 * memory.limit_in_bytes, and memsw where swap accounting exists. Throws if the bound
 * itself cannot be written.
 */
export function writeMemoryBound(dir: string, mb: number): void {
  const bytes = mb * 1024 * 1024;
  const optional = (file: string, value: number) => {
    try {
      if (existsSync(join(dir, file))) writeFileSync(join(dir, file), String(value));
    } catch {
      /* a refinement of the bound, not the bound */
    }
  };
  if (existsSync(join(dir, 'memory.max'))) {
    writeFileSync(join(dir, 'memory.max'), String(bytes));
    optional('memory.high', Math.floor(bytes * MEMORY_HIGH_FRACTION));
    optional('memory.swap.max', 0);
  } else {
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(bytes));
    optional('memory.memsw.limit_in_bytes', bytes);
  }
}

/**
 * The cgroup folder of each worker process under the supervisor's root (where the OS lets
 * us make one), and their removal once the workers are gone.
 */
export class WorkerCgroups {
  /** The supervisor's cgroup folder, or null: the resident-size check is then the only bound. */
  readonly root: string | null;
  readonly #memoryMb: number;
  readonly #log: Logger;
  /** Worker cgroup folders being removed (the kernel refuses until the dead process is reaped). */
  #drops = new Set<Promise<void>>();

  constructor(pid: number, memoryMb: number, log: Logger) {
    this.root = makeCgroupRoot(pid);
    this.#memoryMb = memoryMb;
    this.#log = log;
  }

  /** Puts a new worker in a folder of its own with the memory bound; its folder, or null. */
  attach(w: Pick<WorkerState, 'index' | 'pid'>): string | null {
    if (this.root === null || w.pid === 0) return null;
    const dir = join(this.root, `worker-${w.index}-${w.pid}`);
    try {
      mkdirSync(dir);
      writeMemoryBound(dir, this.#memoryMb);
      writeFileSync(join(dir, 'cgroup.procs'), String(w.pid));
      return dir;
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'memory cgroup not available for the worker');
      try { rmdirSync(dir); } catch { /* never made */ }
      return null;
    }
  }

  /** Removes an ended worker's folder (in the background: see removeCgroup). */
  drop(w: Pick<WorkerState, 'cgroup'>): void {
    if (w.cgroup === null) return;
    const drop = removeCgroup(w.cgroup);
    w.cgroup = null;
    this.#drops.add(drop);
    void drop.then(() => this.#drops.delete(drop));
  }

  /** Once every worker is dropped: waits for their folders, then removes the root. */
  async close(): Promise<void> {
    await Promise.all(this.#drops);
    if (this.root !== null) await removeCgroup(this.root);
  }
}
