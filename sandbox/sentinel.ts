import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';

/**
 * The sentinel: one worker_threads thread per process that runs plugins (started by
 * sandbox/beacon.ts), which needs nothing from the gateway's main thread. Every
 * millisecond it looks at the call in progress (shared memory the main thread writes with
 * plain stores, no syscall on the request path) and:
 *
 * - judges CPU limits on CPU time: while a call runs it reads the main thread's CPU clock
 *   (/proc/self/task/<tid>/schedstat, first field, in ns: the kernel refreshes it every
 *   scheduler tick, about 4 ms here, against 10 ms for /proc/.../stat's utime+stime) and
 *   asks the watchdog (sandbox/watchdog.ts, the one thread that can dispose an isolate)
 *   to stop a call past its CPU limit, or past its wall-time backstop;
 * - detects a wedge: when the watchdog's dispose did not end the call (V8 operations that
 *   never check for termination), it records the culprit in the beacon and SIGKILLs its
 *   own process, so the supervisor's hot spare takes over (under a supervisor only);
 * - writes the crash beacon file, which the supervisor reads after the process died;
 * - watches the supervisor: when it is gone (the parent pid changed), the process exits
 *   even if its main thread is stuck in plugin code.
 */
type Init = {
  state: SharedArrayBuffer;
  file: string | null;
  /** The parent we live for (0: none), and whether a wedge kills the process. */
  parent: number;
  killOnWedge: boolean;
  wallBackstopMs: number;
  wedgeMs: number;
};

type Slot = {
  /** Call budget (CPU ms of the whole call, 0 = idle) and, at byte 8, why it was killed. */
  call: Float64Array;
  killed: Int32Array;
  /** The running plugin's CPU limit (ms) and, at byte 8, its instance index and step counter. */
  plugin: Float64Array;
  current: Int32Array;
  /** The watchdog that holds this sandbox's isolate. */
  control: Int32Array;
};

/** What the watchdog's control cells hold (mirrored in sandbox/watchdog.ts). */
const CTL_WAKE = 2, CTL_SLOT = 3, CTL_SEQ = 4, CTL_REASON = 5;
/** Beacon states in the file (mirrored in sandbox/beacon.ts). */
const IDLE = 0, IN_CALL = 1, WEDGED = 2, LOADING = 3, WEDGED_LOADING = 4;
/** A module's probe at compile time has isolated-vm's own 1 s timeout; past it (plus WEDGE_MS) V8 could not stop it. */
const LOAD_LIMIT_MS = 1000;
/** After the parent died: how long the main thread may take to exit by itself. */
const ORPHAN_GRACE_MS = 400;
/**
 * A wedge also needs this much CPU burnt by the main thread since the watchdog disposed
 * the isolate (termination takes effect within microseconds of CPU when V8 can see it):
 * a thread that is only starved of CPU by a busy machine is not wedged.
 */
const WEDGE_CPU_MS = 20;

const init = workerData as Init;
const state = new Int32Array(init.state);
const slots = new Map<number, Slot>();
let killOnWedge = init.killOnWedge;
let fd = init.file === null ? -1 : openSync(init.file, 'w');
let parent = init.parent;
let orphanSince = 0;

type Message = { type: string; slot?: number; host?: SharedArrayBuffer; plugin?: SharedArrayBuffer; control?: SharedArrayBuffer; file?: string; parent?: number };

function onMessage(m: Message): void {
  if (m.type === 'slot') {
    slots.set(m.slot!, {
      call: new Float64Array(m.host!, 0, 1),
      killed: new Int32Array(m.host!, 8, 1),
      plugin: new Float64Array(m.plugin!, 0, 1),
      current: new Int32Array(m.plugin!, 8, 2),
      control: new Int32Array(m.control!),
    });
  } else if (m.type === 'drop') {
    slots.delete(m.slot!);
  } else if (m.type === 'supervised') {
    if (fd >= 0) closeSync(fd);
    fd = openSync(m.file!, 'w');
    parent = m.parent!;
    killOnWedge = true;
  }
}

/** The main thread's CPU clock (its tid is the pid: the gateway runs on the process's main thread). */
const clock = openClock();
const clockBuf = Buffer.alloc(128);
function openClock(): number {
  try {
    return openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  } catch {
    return -1; // not Linux: limits fall back to wall time (README, Limits)
  }
}
/** CPU time of the main thread in ns (wall time where the OS does not tell). */
function cpuNs(): number {
  if (clock < 0) return performance.now() * 1e6;
  const n = readSync(clock, clockBuf, 0, 128, 0);
  const space = clockBuf.indexOf(32);
  return Number(clockBuf.toString('latin1', 0, space < 0 || space > n ? n : space));
}

const out = new Int32Array(4);
const outBuf = Buffer.from(out.buffer);
let written = '';
function record(slot: number, instance: number, seq: number, s: number): void {
  if (fd < 0) return;
  const key = `${slot} ${instance} ${seq} ${s}`;
  if (key === written) return;
  out[0] = slot; out[1] = instance; out[2] = seq; out[3] = s;
  writeSync(fd, outBuf, 0, 16, 0);
  written = key;
}

/** The call being judged. */
let t: { slot: number; seq: number; cpu0: number; wall0: number; step: number; stepCpu0: number; killAt: number; disposedAt: number; disposedCpu: number } | null = null;

function judge(slot: number, seq: number, s: Slot): void {
  const budget = s.call[0];
  if (budget === 0) return;
  const cpu = cpuNs();
  const wall = performance.now();
  if (t === null || t.seq !== seq || t.slot !== slot) t = { slot, seq, cpu0: cpu, wall0: wall, step: -1, stepCpu0: cpu, killAt: 0, disposedAt: 0, disposedCpu: 0 };
  const step = Atomics.load(s.current, 1);
  if (step !== t.step) {
    t.step = step;
    t.stepCpu0 = cpu;
  }
  if (t.killAt === 0) {
    const limit = s.plugin[0];
    const reason = (cpu - t.cpu0) / 1e6 > budget ? 1 : limit > 0 && (cpu - t.stepCpu0) / 1e6 > limit ? 2 : wall - t.wall0 > budget + init.wallBackstopMs ? 3 : 0;
    if (reason === 0) return;
    const c = s.control;
    Atomics.store(c, CTL_SEQ, seq);
    Atomics.store(c, CTL_REASON, reason);
    Atomics.store(c, CTL_SLOT, slot);
    Atomics.add(c, CTL_WAKE, 1);
    Atomics.notify(c, CTL_WAKE);
    t.killAt = wall;
    return;
  }
  // The watchdog marks the call killed just before it disposes the isolate.
  if (t.disposedAt === 0 && Atomics.load(s.killed, 0) !== 0) {
    t.disposedAt = wall;
    t.disposedCpu = cpu;
  }
  if (!killOnWedge) return;
  // Still in the same call: wedged once the main thread ran on for a while after the
  // dispose; or, whatever happened, long after the kill request.
  const since = t.disposedAt === 0 ? -1 : wall - t.disposedAt;
  if ((since > init.wedgeMs && (cpu - t.disposedCpu) / 1e6 > WEDGE_CPU_MS) || since > 4 * init.wedgeMs || wall - t.killAt > 8 * init.wedgeMs) {
    record(slot, Atomics.load(s.current, 0), seq, WEDGED);
    process.kill(process.pid, 'SIGKILL');
  }
}

/** A module load that ran on past its limit on the CPU clock: the process is killed as wedged. */
function judgeLoading(seq: number): void {
  const cpu = cpuNs();
  const wall = performance.now();
  if (t === null || t.seq !== seq || t.slot !== 0) t = { slot: 0, seq, cpu0: cpu, wall0: wall, step: -1, stepCpu0: cpu, killAt: 0, disposedAt: 0, disposedCpu: 0 };
  if (killOnWedge && (cpu - t.cpu0) / 1e6 > LOAD_LIMIT_MS && wall - t.wall0 > LOAD_LIMIT_MS + init.wedgeMs) {
    record(0, Atomics.load(state, 3), seq, WEDGED_LOADING);
    process.kill(process.pid, 'SIGKILL');
  }
}

let ticks = 0;
function tick(): void {
  if (parent !== 0 && ++ticks % 10 === 0 && process.ppid !== parent) {
    // The supervisor is gone: nobody will replace us. The main thread stops by itself
    // when it can (core/worker.ts on 'disconnect'); if it cannot, we end it.
    if (orphanSince === 0) orphanSince = performance.now();
    else if (performance.now() - orphanSince > ORPHAN_GRACE_MS) process.kill(process.pid, 'SIGKILL');
  }
  const slot = Atomics.load(state, 0), seq = Atomics.load(state, 1), inCall = Atomics.load(state, 2);
  if (inCall === 3) {
    judgeLoading(seq);
    record(0, Atomics.load(state, 3), seq, LOADING);
  } else {
    const s = inCall === 1 ? slots.get(slot) : undefined;
    if (s !== undefined) judge(slot, seq, s);
    else t = null;
    record(slot, s === undefined ? -1 : Atomics.load(s.current, 0), seq, inCall === 1 ? IN_CALL : IDLE);
  }
}

/**
 * The loop: messages, a tick, then 1 ms asleep in Atomics.wait, instead of a 1 ms timer
 * that turned the worker's event loop at each tick. Nothing else in this thread needs its
 * event loop. A terminating worker leaves Atomics.wait at once.
 */
const nap = new Int32Array(new SharedArrayBuffer(4));
parentPort!.postMessage('ready');
for (;;) {
  for (let m = receiveMessageOnPort(parentPort!); m !== undefined; m = receiveMessageOnPort(parentPort!)) onMessage(m.message as Message);
  tick();
  Atomics.wait(nap, 0, 0, 1);
}
