import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * The crash beacon: which sandbox call is running, readable after the process died.
 *
 * Some plugin code kills the whole process (one huge allocation overshoots any heap limit)
 * or wedges its thread, and no code of ours runs then. So the main thread records every
 * call in shared memory (two stores: no syscall on the request path), and a recorder
 * thread copies that record to a small file whenever it changes, every millisecond. After
 * a worker dies or is killed, the supervisor reads the file and knows which tenant, which
 * sandbox and which plugin instance was running.
 *
 * File layout: four little-endian int32: sandbox slot, instance index, call sequence,
 * state (1 = in a call, 0 = idle).
 */
export const BEACON_BYTES = 16;

export type BeaconRecord = { slot: number; instance: number; seq: number; inCall: boolean };

const RECORDER = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const state = new Int32Array(workerData.state);
const fd = fs.openSync(workerData.file, 'w');
const current = new Map();
parentPort.on('message', (m) => { if (m.type === 'slot') current.set(m.slot, new Int32Array(m.shared, 8, 1)); else if (m.type === 'stop') { Atomics.store(state, 3, -1); } });
const out = new Int32Array(4);
const buf = Buffer.from(out.buffer);
let last = '';
function tick() {
  if (Atomics.load(state, 3) === -1) { fs.closeSync(fd); process.exit(0); }
  const slot = Atomics.load(state, 0), seq = Atomics.load(state, 1), inCall = Atomics.load(state, 2);
  const cur = inCall === 1 ? current.get(slot) : undefined;
  const instance = cur === undefined ? -1 : Atomics.load(cur, 0);
  const key = slot + ' ' + seq + ' ' + inCall + ' ' + instance;
  if (key !== last) {
    out[0] = slot; out[1] = instance; out[2] = seq; out[3] = inCall;
    fs.writeSync(fd, buf, 0, 16, 0);
    last = key;
  }
  setTimeout(tick, 1);
}
tick();
`;

class CallBeacon {
  /** [0] slot, [1] seq, [2] in call, [3] stop flag */
  readonly state = new Int32Array(new SharedArrayBuffer(16));
  #slots = 0;
  #recorder: Worker | null = null;
  #pending: { slot: number; shared: SharedArrayBuffer }[] = [];

  /** Starts recording to `file` (worker processes under a supervisor only). */
  start(file: string): void {
    if (this.#recorder !== null) return;
    const w = new Worker(RECORDER, { eval: true, workerData: { state: this.state.buffer, file } });
    w.unref();
    for (const p of this.#pending) w.postMessage({ type: 'slot', ...p });
    this.#pending = [];
    this.#recorder = w;
  }

  /** A slot for a new sandbox; `shared` holds the index of its running instance (Int32 at byte 8). */
  register(shared: SharedArrayBuffer): number {
    const slot = ++this.#slots;
    if (this.#recorder !== null) this.#recorder.postMessage({ type: 'slot', slot, shared });
    else this.#pending.push({ slot, shared });
    return slot;
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

  async stop(): Promise<void> {
    const w = this.#recorder;
    if (w === null) return;
    this.#recorder = null;
    Atomics.store(this.state, 3, -1);
    await new Promise<void>((r) => {
      w.once('exit', () => r());
      setTimeout(() => {
        void w.terminate().then(() => r());
      }, 200).unref();
    });
  }
}

/** The process's one beacon. */
export const beacon = new CallBeacon();

/** Reads a beacon file left by a worker; null when absent or unreadable. */
export function readBeacon(file: string): BeaconRecord | null {
  try {
    const b = readFileSync(file);
    if (b.length < BEACON_BYTES) return null;
    return { slot: b.readInt32LE(0), instance: b.readInt32LE(4), seq: b.readInt32LE(8), inCall: b.readInt32LE(12) === 1 };
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
