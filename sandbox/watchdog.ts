import ivm from 'isolated-vm';

/**
 * One watchdog for the whole process: a tiny isolate whose loop runs on one of
 * isolated-vm's own threads, wakes every `pollMs`, and disposes any plugin isolate whose
 * call ran past its deadline. This replaces isolated-vm's per-call `timeout`, which arms a
 * timer per call and doubled the cost of a crossing (DESIGN.md, "Where the time goes").
 *
 * Each watched isolate has two deadline cells, both in epoch milliseconds, 0 = unarmed:
 * - the call deadline, written only by the host around each call (memory the plugin never
 *   sees), the backstop for the whole chain;
 * - the plugin deadline, written by the in-isolate runtime before each plugin of the chain.
 * The plugin deadline only counts while the call deadline is armed, so a stale value
 * cannot kill an idle isolate.
 */
/** killed[0]: 0 while alive; the loop writes 1 (call deadline passed) or 2 (plugin deadline). */
export const KILL_NONE = 0;

/** Host-side cells of one watched isolate. */
export type WatchCells = {
  /** [0]: call deadline (ms since epoch, 0 = idle). */
  readonly callDeadline: Float64Array;
  /** [0]: why the watchdog killed it (KILL_*). */
  readonly killed: Int32Array;
  /** Shared with the plugin isolate: Float64 [0] plugin deadline, Int32 at byte 8 the running instance. */
  readonly pluginShared: SharedArrayBuffer;
  readonly pluginDeadline: Float64Array;
  readonly current: Int32Array;
};

export function createWatchCells(): WatchCells {
  const host = new SharedArrayBuffer(16);
  const pluginShared = new SharedArrayBuffer(16);
  return {
    callDeadline: new Float64Array(host, 0, 1),
    killed: new Int32Array(host, 8, 1),
    pluginShared,
    pluginDeadline: new Float64Array(pluginShared, 0, 1),
    current: new Int32Array(pluginShared, 8, 1),
  };
}

// ctl[0]: generation (a new loop replaces the old), ctl[1]: id of the isolate in a call
// right now, or -1. Calls are synchronous on the gateway's one thread, so at most one
// isolate is in a call at a time: each wake checks that one, and only every ~100 ms the
// others (in case a call ever runs elsewhere) while dropping disposed ones.
const LOOP = `
const ctl = new Int32Array(control);
const targets = new Map();
let wakes = 0;
function check(t, now) {
  const call = t.call[0];
  if (call === 0) return;
  const plugin = t.plugin[0];
  const reason = now > call ? 1 : plugin !== 0 && now > plugin ? 2 : 0;
  if (reason !== 0) {
    t.killed[0] = reason;
    t.call[0] = 0;
    try { t.isolate.dispose(); } catch {}
  }
}
globalThis.watch = function (generation, id, isolate, hostCells, pluginCells, pollMs) {
  if (isolate !== undefined) {
    targets.set(id, { isolate, call: new Float64Array(hostCells, 0, 1), killed: new Int32Array(hostCells, 8, 1),
      plugin: new Float64Array(pluginCells, 0, 1) });
  }
  const sweepEvery = Math.max(1, Math.round(100 / pollMs));
  // A loop queued behind another restart finds its generation stale and returns at once.
  while (Atomics.load(ctl, 0) === generation) {
    Atomics.wait(ctl, 0, generation, pollMs);
    const now = Date.now();
    const active = targets.get(Atomics.load(ctl, 1));
    if (active !== undefined) check(active, now);
    if (++wakes % sweepEvery === 0) {
      for (const [key, t] of targets) {
        if (t.isolate.isDisposed) targets.delete(key);
        else check(t, now);
      }
    }
  }
  return targets.size;
};
`;

export class Watchdog {
  readonly pollMs: number;
  #isolate: ivm.Isolate;
  #watch: ivm.Reference<(...args: ivm.Transferable[]) => number>;
  #control = new Int32Array(new SharedArrayBuffer(8));
  #nextId = 0;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(pollMs = 2) {
    this.pollMs = pollMs;
    this.#isolate = new ivm.Isolate({ memoryLimit: 16 });
    const ctx = this.#isolate.createContextSync();
    ctx.global.setSync('control', new ivm.ExternalCopy(this.#control.buffer).copyInto({ release: true }));
    ctx.evalSync(LOOP);
    this.#watch = ctx.global.getSync('watch', { reference: true });
    this.#control[1] = -1;
    this.#restart(-1, undefined, undefined);
  }

  /**
   * Starts watching `isolate`; returns its id for enter(). The loop restarts with it in
   * well under a millisecond.
   */
  watch(isolate: ivm.Isolate, cells: WatchCells): number {
    if (this.#stopped) throw new Error('watchdog stopped');
    const id = ++this.#nextId;
    this.#restart(id, isolate, cells);
    return id;
  }

  /** The isolate `id` is about to be called (its call deadline armed). */
  enter(id: number): void {
    this.#control[1] = id;
  }

  leave(): void {
    this.#control[1] = -1;
  }

  #restart(id: number, isolate: ivm.Isolate | undefined, cells: WatchCells | undefined): void {
    // Bump the generation so the running loop returns, and queue the next one: the
    // isolate runs its tasks in order, so there is no moment without a watchdog.
    const generation = Atomics.add(this.#control, 0, 1) + 1;
    Atomics.notify(this.#control, 0);
    const args: ivm.Transferable[] = isolate === undefined || cells === undefined
      ? [generation, id, undefined, undefined, undefined, this.pollMs]
      : [
          generation,
          id,
          isolate,
          new ivm.ExternalCopy(cells.callDeadline.buffer).copyInto({ release: true }),
          new ivm.ExternalCopy(cells.pluginShared).copyInto({ release: true }),
          this.pollMs,
        ];
    this.#running = this.#watch.apply(undefined, args, { result: { promise: true } }).catch(() => undefined);
  }

  /** Stops the loop and frees its isolate. Must finish before the process exits (isolated-vm crashes otherwise). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    Atomics.store(this.#control, 0, -1);
    Atomics.notify(this.#control, 0);
    await this.#running;
    this.#isolate.dispose();
  }
}
