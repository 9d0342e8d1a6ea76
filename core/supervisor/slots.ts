import cluster from 'node:cluster';
import { join } from 'node:path';
import { resetBeacon } from '../../sandbox/beacon.ts';
import type { Logger } from '../log.ts';
import type { WorkerCgroups } from './cgroups.ts';
import { CrashLoop } from './health.ts';
import type { Quarantine } from './quarantine.ts';
import type { ProxySockets } from './sockets.ts';
import { who, type ToSupervisor, type ToWorker, type WorkerState } from './types.ts';

export type WorkerSlotsDeps = {
  configFile: string;
  /** Where the workers' crash beacons are written. */
  runDir: string;
  log: Logger;
  cgroups: WorkerCgroups;
  quarantine: Quarantine;
  /** True once the supervisor stops: nothing is forked or handed on any more. */
  stopping: () => boolean;
  /** Every message of a worker process, and its exit: the supervisor's to judge. */
  message: (w: WorkerState, m: ToSupervisor) => void;
  exited: (w: WorkerState, code: number | null, signal: string | null) => void;
};

/**
 * The supervisor's worker processes and who holds which slot's socket: one serving worker
 * per slot 0..size-1, the hot spare that takes a slot over when its worker goes, and the
 * workers draining to exit whose slot was already handed on. It forks them, hands a slot
 * on, and replaces a worker that is gone; why one went is the supervisor's to judge.
 */
export class WorkerSlots {
  readonly size: number;
  readonly #deps: WorkerSlotsDeps;
  #workers = new Map<number, WorkerState>(); // by slot index 0..size-1
  #spare: WorkerState | null = null;
  /** Workers draining to exit, their slot already handed on. */
  #retiring = new Set<WorkerState>();
  #spareSeq = 1000;
  #crashLoop = new CrashLoop();
  #sockets: ProxySockets | null = null;

  constructor(size: number, deps: WorkerSlotsDeps) {
    this.size = size;
    this.#deps = deps;
  }

  /** Forks a worker for every slot of `sockets`, and the hot spare. */
  start(sockets: ProxySockets): void {
    this.#sockets = sockets;
    cluster.setupPrimary({ exec: join(import.meta.dirname, '..', 'worker.ts'), execArgv: ['--no-node-snapshot'], silent: false });
    for (let i = 0; i < this.size; i++) this.#fork(i, false);
    this.#fork(this.#spareSeq++, true);
  }

  /** The hot spare (loading or loaded), or null. */
  get spare(): WorkerState | null {
    return this.#spare;
  }

  /** Every worker process: serving, retiring and the spare. */
  all(): WorkerState[] {
    const all = [...this.#workers.values(), ...this.#retiring];
    if (this.#spare !== null) all.push(this.#spare);
    return all;
  }

  /** The serving workers still connected, each named by its slot (a reload round's targets). */
  serving(): Map<WorkerState, string> {
    return new Map([...this.#workers.values()].filter((w) => w.worker.isConnected()).map((w) => [w, String(w.index)]));
  }

  /** The serving workers that are ready and connected. */
  ready(): WorkerState[] {
    return [...this.#workers.values()].filter((w) => w.ready && w.worker.isConnected());
  }

  /** How many serving workers said they are ready (connected or not: the isogate_workers gauge). */
  markedReady(): number {
    return [...this.#workers.values()].filter((w) => w.ready).length;
  }

  #fork(index: number, spare: boolean): void {
    const { configFile, runDir, quarantine, cgroups } = this.#deps;
    const beaconFile = join(runDir, `beacon-${index}`);
    resetBeacon(beaconFile);
    const env: Record<string, string> = { ISOGATE_CONFIG: configFile, ISOGATE_BEACON: beaconFile, ISOGATE_WORKER: String(index), ISOGATE_SPARE: spare ? '1' : '0', ISOGATE_SUPERVISOR_PID: String(process.pid), ISOGATE_REFUSED_MODULES: quarantine.refusedModulesEnv() };
    const worker = cluster.fork(env);
    const state: WorkerState = {
      worker, index, beaconFile, pid: worker.process.pid ?? 0, ready: false, startedAt: Date.now(), unansweredSince: 0,
      slots: new Map(), cgroup: null, endedBy: null, spare, loaded: false, vacated: false,
    };
    state.cgroup = cgroups.attach(state);
    if (spare) this.#spare = state;
    else this.#workers.set(index, state);
    worker.on('message', (m: ToSupervisor) => this.#deps.message(state, m));
    worker.on('exit', (code, signal) => this.#deps.exited(state, code, signal));
    // A message sent as the worker exits (a ping to a retiring worker, still connected for a
    // moment) fails with EPIPE as an 'error' event: unheard, it would end the supervisor and
    // every port with it. The worker's exit is handled by 'exit'; the lost message is moot.
    worker.on('error', (err: Error) => this.#deps.log.warn({ ...who(state), err: err.message }, 'a message to the worker was lost (it is exiting)'));
    // A serving worker gets its slot's socket now and listens once loaded; a spare only when it takes a slot.
    if (!spare) this.#activate(state);
  }

  #activate(w: WorkerState): void {
    w.worker.send({ t: 'activate' } satisfies ToWorker, this.#sockets!.of(w.index) as never);
  }

  /** Worker `w` said it is retiring: it stops accepting next, so its slot's socket goes to the spare now, not once it has drained. */
  retiring(w: WorkerState): void {
    if (!this.#deps.stopping() && !w.spare && this.#workers.get(w.index) === w) {
      this.#retiring.add(w);
      this.#workers.delete(w.index);
      this.#deps.log.info(who(w), 'worker retiring; handing its slot on');
      this.vacate(w);
    }
  }

  /** Worker `w` exited: it holds no slot any more. */
  gone(w: WorkerState): void {
    if (this.#workers.get(w.index) === w) this.#workers.delete(w.index);
    this.#retiring.delete(w);
  }

  /** A spare that dies is only replaced (it served nothing), unless `replace` is false (its config cannot load). */
  spareDied(w: WorkerState, replace: boolean): void {
    if (this.#spare === w) this.#spare = null;
    if (replace) setTimeout(() => !this.#deps.stopping() && this.#spare === null && this.#fork(this.#spareSeq++, true), 1000).unref();
  }

  /** The slot of `w` gets no worker again (its config cannot start): its share of connections goes to the others. */
  release(w: WorkerState): void {
    if (!w.vacated) this.#sockets?.release(w.index);
  }

  /**
   * Worker `w` no longer serves its slot (it died, or is draining to exit). The slot's
   * socket stays open here, so what the kernel queued on it waits for the next worker: the
   * hot spare at once (a new spare loads in the background), or a new worker; while that
   * one starts, if other workers serve, the slot gets a fresh socket (ProxySockets.renew)
   * so that its share of new connections goes to them instead of waiting.
   */
  vacate(w: WorkerState): void {
    w.vacated = true;
    const delay = this.#crashLoop.died(w.index);
    const spare = this.#spare;
    if (spare !== null && spare.loaded && spare.worker.isConnected()) {
      this.#spare = null;
      spare.spare = false;
      spare.index = w.index;
      spare.startedAt = Date.now();
      this.#workers.set(w.index, spare);
      this.#activate(spare);
      this.#fork(this.#spareSeq++, true);
      return;
    }
    if (this.ready().length > 0) {
      try {
        this.#sockets?.renew(w.index);
      } catch (err) {
        this.#deps.log.error({ worker: w.index, err: (err as Error).message }, 'could not bind a new proxy socket for the slot; its connections wait for its next worker');
      }
    }
    setTimeout(() => {
      if (!this.#deps.stopping()) this.#fork(w.index, false);
    }, delay).unref();
  }

  /** Tells every worker process to stop (they stop accepting, then drain); resolves once all have exited (SIGKILL after 8 s). */
  async stop(): Promise<void> {
    const exits = this.all().map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.worker.isDead()) return resolve();
          w.worker.once('exit', () => resolve());
          if (w.worker.isConnected()) w.worker.send({ t: 'stop' } satisfies ToWorker);
          setTimeout(() => w.worker.process.kill('SIGKILL'), 8_000).unref();
        }),
    );
    await Promise.all(exits);
  }
}
