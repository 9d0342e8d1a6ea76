import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, stop, stderrOf, type Proc } from './procs.ts';

/** One load run: warm-up, then the measured part. */
export type LoadSpec = {
  port: number;
  /** One path, or many (spread over e.g. a tenant per path). */
  paths: string[];
  connections: number;
  durationS: number;
  warmupS: number;
  threads: number;
  headers: Record<string, string>;
};

export type LoadResult = {
  tool: 'autocannon' | 'wrk';
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Responses with a status outside 2xx (wrk: outside 2xx/3xx). */
  non2xx: number;
};

export type LoadHooks = { onStart?(): void; onEnd?(): void };

export interface LoadGen {
  readonly tool: 'autocannon' | 'wrk';
  run(spec: LoadSpec, hooks?: LoadHooks): Promise<LoadResult>;
  close(): Promise<void>;
}

const HERE = import.meta.dirname;

/** autocannon in a long-lived child process pinned to `cpus`. */
export class AutocannonGen implements LoadGen {
  readonly tool = 'autocannon' as const;
  #proc: Proc;
  #pending: { hooks: LoadHooks; resolve(r: LoadResult): void; reject(e: Error): void } | null = null;

  constructor(cpus: readonly number[] | null) {
    this.#proc = start({
      name: 'autocannon',
      cmd: process.execPath,
      args: [join(HERE, 'autocannon-worker.ts')],
      cpus,
      ipc: true,
    });
    this.#proc.child.on('message', (m: { t: string; result?: Omit<LoadResult, 'tool' | 'rps'>; message?: string }) => {
      const p = this.#pending;
      if (p === null) return;
      if (m.t === 'start') p.hooks.onStart?.();
      else if (m.t === 'end') {
        p.hooks.onEnd?.();
        this.#pending = null;
        const r = m.result!;
        p.resolve({ tool: 'autocannon', ...r, rps: r.requests / r.durationS });
      } else if (m.t === 'error') {
        this.#pending = null;
        p.reject(new Error(`autocannon: ${m.message}`));
      }
    });
    void this.#proc.exited.then((code) => {
      const p = this.#pending;
      this.#pending = null;
      p?.reject(new Error(`autocannon process exited (${code}): ${stderrOf(this.#proc).slice(-500)}`));
    });
  }

  run(spec: LoadSpec, hooks: LoadHooks = {}): Promise<LoadResult> {
    if (this.#pending !== null) return Promise.reject(new Error('autocannon is busy'));
    return new Promise((resolve, reject) => {
      this.#pending = { hooks, resolve, reject };
      this.#proc.child.send({ spec });
    });
  }

  close(): Promise<void> {
    return stop(this.#proc, 1000);
  }
}

/** wrk, one process per run (it starts in a millisecond). */
export class WrkGen implements LoadGen {
  readonly tool = 'wrk' as const;
  #cpus: readonly number[] | null;
  #dir: string;
  #seq = 0;

  constructor(cpus: readonly number[] | null, dir: string) {
    this.#cpus = cpus;
    this.#dir = dir;
  }

  async #once(spec: LoadSpec, seconds: number, pathsFile: string): Promise<LoadResult> {
    let json = '';
    const threads = Math.max(1, Math.min(spec.threads, spec.connections));
    const args = ['-t', String(threads), '-c', String(spec.connections), '-d', `${Math.ceil(seconds) + 2}s`, '--timeout', '10s', '-s', join(HERE, 'wrk.lua')];
    for (const [k, v] of Object.entries(spec.headers)) args.push('-H', `${k}: ${v}`);
    args.push(`http://127.0.0.1:${spec.port}${spec.paths[0]}`);
    const p = start({
      name: 'wrk',
      cmd: 'wrk',
      args,
      cpus: this.#cpus,
      env: { WRK_PATHS: pathsFile },
      onLine: (l) => {
        if (l.startsWith('WRKJSON ')) json = l.slice(8);
      },
    });
    // wrk takes whole seconds: it runs longer and is stopped with SIGINT, after which it
    // prints its summary over the time it actually ran.
    const timer = setTimeout(() => p.child.kill('SIGINT'), seconds * 1000);
    const code = await p.exited;
    clearTimeout(timer);
    if (json === '') throw new Error(`wrk exited (${code}) without a summary: ${stderrOf(p).slice(-500)}`);
    const j = JSON.parse(json) as Record<string, number>;
    const durationS = j.duration_us / 1e6;
    return {
      tool: 'wrk',
      requests: j.requests,
      durationS,
      rps: j.requests / durationS,
      p50Ms: j.p50_us / 1000,
      p99Ms: j.p99_us / 1000,
      maxMs: j.max_us / 1000,
      errors: j.connect + j.read + j.write + j.timeout,
      non2xx: j.status,
    };
  }

  async run(spec: LoadSpec, hooks: LoadHooks = {}): Promise<LoadResult> {
    let pathsFile = '';
    if (spec.paths.length > 1) {
      pathsFile = join(this.#dir, `wrk-paths-${++this.#seq}.txt`);
      writeFileSync(pathsFile, spec.paths.join('\n') + '\n');
    }
    if (spec.warmupS > 0) await this.#once(spec, spec.warmupS, pathsFile);
    hooks.onStart?.();
    try {
      return await this.#once(spec, spec.durationS, pathsFile);
    } finally {
      hooks.onEnd?.();
    }
  }

  async close(): Promise<void> {}
}
