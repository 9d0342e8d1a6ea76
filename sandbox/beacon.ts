import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The crash beacon and the sentinel thread (sandbox/sentinel.ts) behind it.
 *
 * Some plugin code kills the whole process (one huge allocation overshoots any heap limit)
 * or wedges its thread, and no code of ours runs on that thread then. So the main thread
 * records every call in shared memory (three stores: no syscall on the request path), and
 * the sentinel thread, which needs nothing from the main thread, judges the call's CPU
 * limits, kills a wedged process, and copies the record to a small file whenever it
 * changes, every millisecond. After a worker dies or is killed, the supervisor reads the
 * file and knows which tenant, which sandbox and which plugin instance was running.
 *
 * File layout: four little-endian int32: sandbox slot, instance index, call sequence,
 * state (1 = in a call, 0 = idle, 2 = wedged: killed by its sentinel, 3 = loading a
 * plugin module at config compile time, 4 = wedged while loading one). While loading, the
 * instance field holds the module's tag (moduleTag), and `<file>.loading` names its source.
 */
export const BEACON_BYTES = 16;

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
  /** [0] slot, [1] seq, [2] 1 in call, 3 loading, 0 idle, [3] the module being loaded */
  readonly state = new Int32Array(new SharedArrayBuffer(16));
  #slots = 0;
  #sentinel: Worker | null = null;
  #file: string | null = null;
  #ready: Promise<void> = Promise.resolve();

  #ensure(): Worker {
    if (this.#sentinel !== null) return this.#sentinel;
    const w = new Worker(SENTINEL, {
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
    s[3] = tag;
    s[1]++;
    s[2] = 3;
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

  enter(slot: number): void {
    const s = this.state;
    s[0] = slot;
    s[1]++;
    s[2] = 1;
  }

  leave(): void {
    this.state[2] = 0;
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
