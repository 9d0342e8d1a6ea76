import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The crash beacon and the sentinel thread (sandbox/sentinel.ts) behind it.
 *
 * Some plugin code kills the whole process (one huge allocation overshoots any heap limit)
 * or wedges its thread, and no code of ours runs on that thread then. So the main thread
 * records every call in shared memory (three stores and a load: no syscall on the request
 * path), and the sentinel thread, which needs nothing from the main thread, judges the
 * call's CPU limits, kills a wedged process, and copies the record to a small file
 * whenever it changes, every millisecond while calls run. After a worker dies or is
 * killed, the supervisor reads the file and knows which tenant, which sandbox and which
 * plugin instance was running.
 *
 * After PARK_AFTER_MS (sandbox/sentinel.ts) without a call the sentinel parks: it sleeps
 * in Atomics.wait on the call sequence, waking every PARKED_WAIT_MS for the orphan check,
 * and says so in the state's parked cell. The first call that finds it parked leaves a
 * mark (the main thread's CPU clock and the wall time at the call's start) and wakes it
 * with Atomics.notify: one syscall after a pause, none per call while calls keep coming.
 * The call's limits count from the mark, not from the wake-up.
 *
 * File layout: four little-endian int32: sandbox slot, instance index, call sequence,
 * state (1 = in a call, 0 = idle, 2 = wedged: killed by its sentinel, 3 = loading a
 * plugin module at config compile time, 4 = wedged while loading one). While loading, the
 * instance field holds the module's tag (moduleTag), and `<file>.loading` names its source.
 */
export const BEACON_BYTES = 16;

/**
 * The state cells (Int32 index; mirrored in sandbox/sentinel.ts, and the first three in
 * the watchdog's loop): slot, call sequence, 1 in call / 3 loading / 0 idle, the module
 * being loaded, 1 while the sentinel is parked, the sequence of the call the mark is for
 * (0: none being written), the step counter of its sandbox at the mark; Float64 from byte
 * MARK_AT: the main thread's CPU time (ns) and the monotonic time (ms, process.hrtime) at the mark.
 */
const SLOT = 0, SEQ = 1, MODE = 2, MODULE = 3, PARKED = 4, MARK_SEQ = 5, MARK_STEP = 6;
const MARK_AT = 32;

export type BeaconRecord = {
  slot: number;
  instance: number;
  seq: number;
  inCall: boolean;
  wedged: boolean;
  /** The module being loaded when the record was written: its tag and source. */
  loading: { tag: number; source: string } | null;
};

/** A plugin module's tag in the beacon: 32 bits of its code's SHA-256 (sandbox/plugin-loader.ts). */
export type ModuleTag = number;

/** A call may run this much wall time past its CPU budget before it is stopped anyway. */
export const WALL_BACKSTOP_MS = 1000;
/** After the watchdog's dispose, how long a call may still hold the thread before the process is killed as wedged. */
export const WEDGE_MS = 200;

const SENTINEL = join(import.meta.dirname, 'sentinel.ts');

class CallBeacon {
  /** The state cells (above). */
  readonly state = new Int32Array(new SharedArrayBuffer(MARK_AT + 16));
  #mark = new Float64Array(this.state.buffer, MARK_AT, 2);
  #slots = 0;
  #sentinel: Worker | null = null;
  #file: string | null = null;
  #ready: Promise<void> = Promise.resolve();

  #ensure(): Worker {
    if (this.#sentinel !== null) return this.#sentinel;
    const w = new Worker(SENTINEL, {
      name: 'sentinel', // the thread's name in /proc/<pid>/task/*/comm
      workerData: { state: this.state.buffer, file: null, parent: 0, killOnWedge: false, wallBackstopMs: WALL_BACKSTOP_MS, wedgeMs: WEDGE_MS },
    });
    w.unref();
    this.#ready = new Promise((resolve) => w.once('message', () => resolve()));
    this.#sentinel = w;
    return w;
  }

  /**
   * Resolves once the sentinel runs (it takes ~100 ms to start): until then nothing
   * judges CPU limits, so a gateway waits for it before it serves.
   */
  ready(): Promise<void> {
    this.#ensure();
    return this.#ready;
  }

  /**
   * Worker processes under a supervisor: record to `file`, exit when `parent` is gone, and
   * kill the process when its main thread is wedged in a call.
   */
  supervised(file: string, parent: number): void {
    this.#file = file;
    this.#ensure().postMessage({ type: 'supervised', file, parent });
  }

  /**
   * A plugin module's code is about to run at config compile time (its metadata probe),
   * outside any sandbox call: the sentinel kills a process stuck in it, and the supervisor
   * learns from the beacon which module it was. leave() ends it.
   */
  loading(tag: ModuleTag, source: string): void {
    if (this.#file !== null) writeFileSync(`${this.#file}.loading`, `${tag}\n${source}`);
    const s = this.state;
    s[MODULE] = tag;
    s[SEQ]++;
    Atomics.store(s, MODE, 3);
    if (Atomics.load(s, PARKED) !== 0) this.#wake(null);
  }

  /**
   * A slot for a new sandbox. `host` holds its call budget and kill reason, `plugin` the
   * running plugin's limit, instance and step (sandbox/watchdog.ts WatchCells); `control`
   * is the watchdog that can stop its isolate.
   */
  register(host: SharedArrayBuffer, plugin: SharedArrayBuffer, control: SharedArrayBuffer): number {
    const slot = ++this.#slots;
    this.#ensure().postMessage({ type: 'slot', slot, host, plugin, control });
    return slot;
  }

  /** The sandbox of `slot` is gone. */
  unregister(slot: number): void {
    this.#sentinel?.postMessage({ type: 'drop', slot });
  }

  /**
   * A call into the sandbox of `slot` begins; `step` is its step counter (WatchCells.step).
   * The store of the state is sequentially consistent, so it is ordered before the load of
   * the parked cell, as the sentinel's store of that cell is before its last look at the
   * state: either this call sees the sentinel parked and wakes it, or the sentinel sees
   * this call (or a later sequence: its Atomics.wait then returns at once).
   */
  enter(slot: number, step: Int32Array): void {
    const s = this.state;
    s[SLOT] = slot;
    s[SEQ]++;
    Atomics.store(s, MODE, 1);
    if (Atomics.load(s, PARKED) !== 0) this.#wake(step);
  }

  leave(): void {
    this.state[MODE] = 0;
  }

  /** The sentinel is parked (it has seen no call for a while); for tests. */
  get parked(): boolean {
    return Atomics.load(this.state, PARKED) !== 0;
  }

  /**
   * The sentinel is parked: marks where this call starts, then wakes it. The mark is
   * written between two stores of its sequence (0, then the call's), so a sentinel that
   * reads it while it changes can tell.
   */
  #wake(step: Int32Array | null): void {
    const s = this.state;
    Atomics.store(s, MARK_SEQ, 0);
    const cpu = process.threadCpuUsage();
    this.#mark[0] = (cpu.user + cpu.system) * 1000;
    this.#mark[1] = Number(process.hrtime.bigint()) / 1e6; // one clock for both threads (performance.now() has a time origin per thread)
    s[MARK_STEP] = step === null ? -1 : step[0];
    Atomics.store(s, MARK_SEQ, s[SEQ]);
    Atomics.notify(s, SEQ);
  }

  /**
   * Records idle on the way out. The sentinel itself stays until the process is gone
   * (its thread does not hold the process open): if the exit gets stuck, for example in
   * plugin code, it still kills an orphan.
   */
  stop(): void {
    this.leave();
  }
}

/** The process's one beacon. */
export const beacon = new CallBeacon();

/** Reads a beacon file left by a worker; null when absent or unreadable. */
export function readBeacon(file: string): BeaconRecord | null {
  try {
    const b = readFileSync(file);
    if (b.length < BEACON_BYTES) return null;
    const s = b.readInt32LE(12);
    let loading: BeaconRecord['loading'] = null;
    if (s === 3 || s === 4) {
      let tag = '', source = '';
      try {
        [tag, source = ''] = readFileSync(`${file}.loading`, 'utf8').split('\n');
      } catch {
        /* the source is only for the log */
      }
      loading = { tag: b.readInt32LE(4), source: Number(tag) === b.readInt32LE(4) ? source : '' };
    }
    return { slot: b.readInt32LE(0), instance: b.readInt32LE(4), seq: b.readInt32LE(8), inCall: s === 1 || s === 2, wedged: s === 2 || s === 4, loading };
  } catch {
    return null;
  }
}

/** Creates (or empties) a beacon file, so a stale record of an earlier worker never counts. */
export function resetBeacon(file: string): void {
  const fd = openSync(file, 'w');
  writeSync(fd, Buffer.alloc(BEACON_BYTES));
  closeSync(fd);
}
