import ivm from 'isolated-vm';
import { beacon } from './beacon.ts';

/**
 * The hand of the sentinel (sandbox/sentinel.ts): a tiny isolate whose loop runs on one
 * of isolated-vm's own threads and sleeps until the sentinel asks it to dispose the
 * isolate of a call that ran past its limit. The sentinel judges (it can read the main
 * thread's CPU clock; an isolate cannot), the watchdog acts (only an isolate can hold and
 * dispose another isolate off the main thread). There is no timer per call and no
 * polling in here: an idle gateway's watchdog never wakes.
 *
 * Each watched isolate has two limit cells, in milliseconds of the main thread's CPU
 * time, 0 = unarmed:
 * - the call budget, written only by the host around each call (memory the plugin never
 *   sees), the backstop for the whole chain; the call may also not run longer than
 *   budget + WALL_BACKSTOP_MS (sandbox/beacon.ts) of wall time;
 * - the plugin limit, written by the in-isolate runtime before each plugin of the chain,
 *   with a step counter the sentinel uses to see that the next plugin began.
 * The plugin limit only counts while the call budget is armed, so a stale value cannot
 * kill an idle isolate.
 */
/** killed[0]: 0 while alive; 1 (call budget spent), 2 (plugin limit), 3 (wall backstop). */
export const KILL_NONE = 0;
export const KILL_WALL = 3;

/** Host-side cells of one watched isolate. */
export type WatchCells = {
  /** [0]: call budget (CPU ms, 0 = idle). */
  readonly callDeadline: Float64Array;
  /** [0]: why the watchdog killed it (KILL_*). */
  readonly killed: Int32Array;
  /**
   * Shared with the plugin isolate: Float64 [0] plugin limit (CPU ms), Int32 at byte 8 the
   * running instance, at byte 12 the step, at byte 16 1 once the call's early headerFilter
   * began (the host resets it to 0 before each call).
   */
  readonly pluginShared: SharedArrayBuffer;
  readonly pluginDeadline: Float64Array;
  readonly current: Int32Array;
  readonly step: Int32Array;
  readonly earlyPart: Int32Array;
};

export function createWatchCells(): WatchCells {
  const host = new SharedArrayBuffer(16);
  const pluginShared = new SharedArrayBuffer(24);
  return {
    callDeadline: new Float64Array(host, 0, 1),
    killed: new Int32Array(host, 8, 1),
    pluginShared,
    pluginDeadline: new Float64Array(pluginShared, 0, 1),
    current: new Int32Array(pluginShared, 8, 1),
    step: new Int32Array(pluginShared, 12, 1),
    earlyPart: new Int32Array(pluginShared, 16, 1),
  };
}

// ctl[0]: generation (a new loop replaces the old), ctl[2]: wake counter, ctl[3]: the slot
// the sentinel wants stopped (0: none), ctl[4]: the call sequence it judged, ctl[5]: why.
// The beacon's state says which call runs now: a request for a call that already ended is
// dropped, so a late request never stops the next call.
const LOOP = `
const ctl = new Int32Array(control);
const now = new Int32Array(beaconState);
const targets = new Map();
globalThis.watch = function (generation, slot, isolate, hostCells) {
  if (isolate !== undefined) targets.set(slot, { isolate, killed: new Int32Array(hostCells, 8, 1) });
  while (Atomics.load(ctl, 0) === generation) {
    const seen = Atomics.load(ctl, 2);
    const target = Atomics.exchange(ctl, 3, 0);
    if (target !== 0) {
      const t = targets.get(target);
      if (t !== undefined && Atomics.load(now, 0) === target && Atomics.load(now, 2) === 1 && Atomics.load(now, 1) === Atomics.load(ctl, 4)) {
        t.killed[0] = Atomics.load(ctl, 5);
        try { t.isolate.dispose(); } catch {}
      }
      continue;
    }
    if (Atomics.wait(ctl, 2, seen, 1000) === 'timed-out') {
      for (const [key, t] of targets) if (t.isolate.isDisposed) targets.delete(key);
    }
  }
  return targets.size;
};
`;

export class Watchdog {
  #isolate: ivm.Isolate;
  #watch: ivm.Reference<(...args: ivm.Transferable[]) => number>;
  /** The sentinel writes kill requests here (sandbox/beacon.ts register). */
  readonly control = new SharedArrayBuffer(24);
  #ctl = new Int32Array(this.control);
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;
  /**
   * An exit that did not stop us first (node:cluster calls process.exit in a worker the
   * moment its supervisor's channel closes) would wait forever for the loop's thread
   * (isolated-vm joins its threads at exit): end the loop on 'exit', synchronously.
   */
  #onExit = (): void => this.#end();

  constructor() {
    this.#isolate = new ivm.Isolate({ memoryLimit: 16 });
    const ctx = this.#isolate.createContextSync();
    ctx.global.setSync('control', new ivm.ExternalCopy(this.control).copyInto({ release: true }));
    ctx.global.setSync('beaconState', new ivm.ExternalCopy(beacon.state.buffer).copyInto({ release: true }));
    ctx.evalSync(LOOP);
    this.#watch = ctx.global.getSync('watch', { reference: true });
    this.#restart(0, undefined, undefined);
    process.once('exit', this.#onExit);
  }

  #end(): void {
    Atomics.store(this.#ctl, 0, -1);
    Atomics.add(this.#ctl, 2, 1);
    Atomics.notify(this.#ctl, 2);
  }

  /**
   * Starts watching `isolate`, the live isolate of the sandbox with beacon slot `slot`
   * (it replaces the slot's previous one). The loop restarts with it in well under a
   * millisecond.
   */
  watch(slot: number, isolate: ivm.Isolate, cells: WatchCells): void {
    if (this.#stopped) throw new Error('watchdog stopped');
    this.#restart(slot, isolate, cells);
  }

  #restart(slot: number, isolate: ivm.Isolate | undefined, cells: WatchCells | undefined): void {
    // Bump the generation so the running loop returns, and queue the next one: the
    // isolate runs its tasks in order, so there is no moment without a watchdog.
    const generation = Atomics.add(this.#ctl, 0, 1) + 1;
    Atomics.add(this.#ctl, 2, 1);
    Atomics.notify(this.#ctl, 2);
    const args: ivm.Transferable[] = isolate === undefined || cells === undefined
      ? [generation, slot, undefined, undefined]
      : [generation, slot, isolate, new ivm.ExternalCopy(cells.callDeadline.buffer).copyInto({ release: true })];
    this.#running = this.#watch.apply(undefined, args, { result: { promise: true } }).catch(() => undefined);
  }

  /** Stops the loop and frees its isolate. Must finish before the process exits (isolated-vm crashes otherwise). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    process.off('exit', this.#onExit);
    this.#end();
    await this.#running;
    this.#isolate.dispose();
  }
}
