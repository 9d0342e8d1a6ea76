import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * Child processes of the harness: every one is started in its own process group, tracked,
 * and killed (the whole group) on exit, Ctrl-C or error. Pinning uses taskset when present.
 */

export type Proc = {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) when the process is gone. */
  exited: Promise<number | string>;
  stopped: boolean;
};

const live = new Set<Proc>();

export const HAS_TASKSET = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const out = r.stdout.trim();
  return r.status === 0 && out !== '' ? out : null;
}

/** CPUs this process may run on (Cpus_allowed_list), in order. */
export function allowedCpus(): number[] {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
    if (line !== undefined) {
      const out: number[] = [];
      for (const part of line.split(':')[1].trim().split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a; c <= (b ?? a); c++) out.push(c);
      }
      if (out.length > 0) return out;
    }
  } catch {
    // not Linux: fall through
  }
  return [0];
}

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Pins the calling process (all its threads) to `cpus`. */
export function pinSelf(cpus: readonly number[]): void {
  if (!HAS_TASKSET || cpus.length === 0) return;
  spawnSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(process.pid)], { stdio: 'ignore' });
}

export type StartOptions = {
  name: string;
  cmd: string;
  args: string[];
  /** CPUs to pin to (null: not pinned). */
  cpus: readonly number[] | null;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Add an IPC channel (node children only). */
  ipc?: boolean;
  /** Called with each stdout line. */
  onLine?: (line: string) => void;
};

export function start(o: StartOptions): Proc {
  const pinned = o.cpus !== null && HAS_TASKSET && o.cpus.length > 0;
  const cmd = pinned ? 'taskset' : o.cmd;
  const args = pinned ? ['-c', o.cpus!.join(','), o.cmd, ...o.args] : o.args;
  const opts: SpawnOptions = {
    cwd: o.cwd,
    env: { ...process.env, ...o.env },
    detached: true,
    stdio: o.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  };
  const child = spawn(cmd, args, opts);
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000);
  });
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    if (o.onLine === undefined) return;
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      o.onLine(line);
    }
  });
  const p: Proc = {
    name: o.name,
    child,
    pid: child.pid ?? -1,
    stopped: false,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(p);
        resolve(code ?? signal ?? -1);
      });
      child.once('error', (err) => {
        live.delete(p);
        stderr += String(err);
        resolve(-1);
      });
    }),
  };
  Object.defineProperty(p, 'stderr', { get: () => stderr });
  live.add(p);
  return p;
}

export function stderrOf(p: Proc): string {
  return (p as unknown as { stderr: string }).stderr ?? '';
}

function signalGroup(p: Proc, sig: NodeJS.Signals): void {
  try {
    process.kill(-p.pid, sig);
  } catch {
    try {
      process.kill(p.pid, sig);
    } catch {
      // gone
    }
  }
}

/** Freezes a process group (SIGSTOP) so it takes no CPU while others are measured. */
export function pause(p: Proc): void {
  if (p.stopped || !live.has(p)) return;
  signalGroup(p, 'SIGSTOP');
  p.stopped = true;
}

export function resume(p: Proc): void {
  if (!p.stopped) return;
  signalGroup(p, 'SIGCONT');
  p.stopped = false;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(p: Proc, graceMs = 3000): Promise<void> {
  if (!live.has(p)) return;
  resume(p);
  signalGroup(p, 'SIGTERM');
  const t = setTimeout(() => signalGroup(p, 'SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
  // Anything left in its group (workers) goes too.
  signalGroup(p, 'SIGKILL');
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p)));
}

/** Synchronous last resort (process 'exit'): SIGKILL every group still alive. */
export function killAllSync(): void {
  for (const p of live) {
    signalGroup(p, 'SIGCONT');
    signalGroup(p, 'SIGKILL');
  }
  live.clear();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits until 127.0.0.1:port accepts a TCP connection (no request is sent). */
export async function waitPort(port: number, p: Proc | null, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  p?.exited.then(() => (exited = true));
  while (Date.now() < until) {
    if (exited) throw new Error(`${p!.name} exited before listening: ${stderrOf(p!).trim().slice(-800)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${p?.name ?? 'server'} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The process and all its descendants (scans /proc). */
export function tree(pid: number): number[] {
  const parent = new Map<number, number>();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
        parent.set(Number(d), Number(rest[1]));
      } catch {
        // gone
      }
    }
  } catch {
    return [pid];
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    for (const [child, pp] of parent) if (pp === out[i]) out.push(child);
  }
  return out;
}

/** utime+stime of one process in seconds (0 if unreadable). */
export function cpuSeconds(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    // fields after ")" start at field 3 (state): utime is field 14, stime 15.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds of `pid` and (when `children`) its descendants. */
export function treeCpu(pid: number, children: boolean): number {
  const pids = children ? tree(pid) : [pid];
  let sum = 0;
  for (const p of pids) sum += cpuSeconds(p);
  return sum;
}

/** VmRSS in bytes, summed over the tree when `children`. */
export function rssBytes(pid: number, children = false): number {
  let sum = 0;
  for (const p of children ? tree(pid) : [pid]) {
    try {
      const line = readFileSync(`/proc/${p}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
      if (line !== undefined) sum += Number(line.split(/\s+/)[1]) * 1024;
    } catch {
      // gone
    }
  }
  return sum;
}

/** Busy seconds (user+nice+system+irq+softirq+steal) of one CPU, from /proc/stat. */
export function cpuBusySeconds(cpu: number): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
    if (line === undefined) return 0;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** 1-minute load average. */
export function loadAvg(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}
