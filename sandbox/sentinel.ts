import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';

/**
 * The sentinel: one worker_threads thread per process that runs plugins (started by
 * sandbox/beacon.ts, named `sentinel`), which needs nothing from the gateway's main
 * thread. Every millisecond while calls run it looks at the call in progress (shared
 * memory the main thread writes with stores, no syscall on the request path) and:
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
 *
 * After PARK_AFTER_MS without a call or a module load it parks (the loop at the end):
 * an idle worker, the hot spare included, then wakes PARKED_WAIT_MS apart instead of
 * every millisecond. The first call after that finds the parked cell set and wakes it;
 * its limits count from the mark that call left (its start), not from the wake-up.
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
/** The beacon's state cells (mirrored in sandbox/beacon.ts). */
const SLOT = 0, SEQ = 1, MODE = 2, MODULE = 3, PARKED = 4, MARK_SEQ = 5, MARK_STEP = 6;
const MARK_AT = 32;
/**
 * Park after this long without a call: a gateway whose plugins run more often than this
 * never parks, so it never pays the main thread's wake-up syscall.
 */
const PARK_AFTER_MS = 50;
/** Parked, wake this often anyway: the orphan check (and a supervised message) waits at most this long. */
const PARKED_WAIT_MS = 50;
/** How often the parent pid is looked at. */
const ORPHAN_CHECK_MS = 10;
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
const mark = new Float64Array(init.state, MARK_AT, 2);
/** process.hrtime in ms minus this thread's performance.now(): both run on the monotonic clock. */
const HRTIME_TO_NOW = hrtimeToNow();
function hrtimeToNow(): number {
  let d = 0;
  for (let i = 0; i < 3; i++) d = Number(process.hrtime.bigint()) / 1e6 - performance.now(); // the first calls set up each clock (~1 ms)
  return d;
}
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

/** The call being judged; firstStep: its sandbox's step when the sentinel first saw it. */
type Judged = { slot: number; seq: number; cpu0: number; wall0: number; step: number; firstStep: number; stepCpu0: number; marked: boolean; killAt: number; disposedAt: number; disposedCpu: number };
let t: Judged | null = null;

function begin(slot: number, seq: number, cpu: number, wall: number): Judged {
  return { slot, seq, cpu0: cpu, wall0: wall, step: -1, firstStep: -1, stepCpu0: cpu, marked: false, killAt: 0, disposedAt: 0, disposedCpu: 0 };
}

/**
 * A call that woke the sentinel from its park counts from its mark (sandbox/beacon.ts
 * #wake), not from the moment the sentinel first saw it. So does the call's first plugin
 * when the sentinel first saw the call in it (the step then was the mark's + 1): it began
 * after the mark. A plugin seen later starts its clock when the step changes, as ever.
 */
function fromMark(j: Judged): void {
  if (j.marked || Atomics.load(state, MARK_SEQ) !== j.seq) return;
  const wall0 = mark[1] - HRTIME_TO_NOW;
  const cpu0 = clock < 0 ? wall0 * 1e6 : mark[0];
  const step = state[MARK_STEP];
  if (Atomics.load(state, MARK_SEQ) !== j.seq) return; // being rewritten: for a later call
  j.marked = true;
  if (cpu0 < j.cpu0) j.cpu0 = cpu0;
  if (wall0 < j.wall0) j.wall0 = wall0;
  if (j.step === j.firstStep && j.step === step + 1 && cpu0 < j.stepCpu0) j.stepCpu0 = cpu0;
}

function judge(slot: number, seq: number, s: Slot): void {
  const budget = s.call[0];
  if (budget === 0) return;
  const cpu = cpuNs();
  const wall = performance.now();
  if (t === null || t.seq !== seq || t.slot !== slot) t = begin(slot, seq, cpu, wall);
  const step = Atomics.load(s.current, 1);
  if (step !== t.step) {
    if (t.step === -1) t.firstStep = step;
    t.step = step;
    t.stepCpu0 = cpu;
  }
  fromMark(t);
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
  if (t === null || t.seq !== seq || t.slot !== 0) t = begin(0, seq, cpu, wall);
  fromMark(t);
  if (killOnWedge && (cpu - t.cpu0) / 1e6 > LOAD_LIMIT_MS && wall - t.wall0 > LOAD_LIMIT_MS + init.wedgeMs) {
    record(0, Atomics.load(state, MODULE), seq, WEDGED_LOADING);
    process.kill(process.pid, 'SIGKILL');
  }
}

let orphanCheckedAt = 0;
/** One look at the state; true when a call or a module load is in progress. */
function tick(): boolean {
  const now = performance.now();
  if (parent !== 0 && now - orphanCheckedAt >= ORPHAN_CHECK_MS) {
    orphanCheckedAt = now;
    if (process.ppid !== parent) {
      // The supervisor is gone: nobody will replace us. The main thread stops by itself
      // when it can (core/worker.ts on 'disconnect'); if it cannot, we end it.
      if (orphanSince === 0) orphanSince = now;
      else if (now - orphanSince > ORPHAN_GRACE_MS) process.kill(process.pid, 'SIGKILL');
    }
  }
  const slot = Atomics.load(state, SLOT), seq = Atomics.load(state, SEQ), inCall = Atomics.load(state, MODE);
  if (inCall === 3) {
    judgeLoading(seq);
    record(0, Atomics.load(state, MODULE), seq, LOADING);
    return true;
  }
  const s = inCall === 1 ? slots.get(slot) : undefined;
  if (s !== undefined) judge(slot, seq, s);
  else t = null;
  record(slot, s === undefined ? -1 : Atomics.load(s.current, 0), seq, inCall === 1 ? IN_CALL : IDLE);
  return inCall !== 0;
}

/**
 * The loop: messages, a tick, then 1 ms asleep in Atomics.wait, instead of a 1 ms timer
 * that turned the worker's event loop at each tick. Nothing else in this thread needs its
 * event loop. A terminating worker leaves Atomics.wait at once.
 *
 * Parking, after PARK_AFTER_MS in which the sequence did not move and no call ran: set the
 * parked cell, look at the state once more, then wait on the sequence cell itself. The
 * main thread's enter/loading bumps the sequence and stores the state (sequentially
 * consistent) before it loads the parked cell; we store the parked cell before our last
 * look. So either it sees us parked and notifies (and a notify before our wait makes the
 * wait see the new sequence and return at once), or we see its call and do not wait. A
 * sequence that moved restarts the quiet time, so we tick for PARK_AFTER_MS after it.
 */
const nap = new Int32Array(new SharedArrayBuffer(4));
let lastSeq = Atomics.load(state, SEQ);
let quietSince = performance.now();
parentPort!.postMessage('ready');
for (;;) {
  for (let m = receiveMessageOnPort(parentPort!); m !== undefined; m = receiveMessageOnPort(parentPort!)) onMessage(m.message as Message);
  const busy = tick();
  const seq = Atomics.load(state, SEQ);
  const now = performance.now();
  if (busy || seq !== lastSeq) {
    lastSeq = seq;
    quietSince = now;
  }
  if (now - quietSince < PARK_AFTER_MS) {
    Atomics.wait(nap, 0, 0, 1);
    continue;
  }
  Atomics.store(state, PARKED, 1);
  if (Atomics.load(state, MODE) === 0 && Atomics.load(state, SEQ) === lastSeq) Atomics.wait(state, SEQ, lastSeq, PARKED_WAIT_MS);
  Atomics.store(state, PARKED, 0);
}
