import { basename } from 'node:path';
import type { BeaconRecord } from '../../sandbox/beacon.ts';
import type { Logger } from '../log.ts';
import type { ToWorker, WorkerState } from './types.ts';

export type Quarantined = { key: string; instance: string; tenant: string; reason: string; at: string };

/**
 * What the supervisor quarantined after a worker died: plugin instances that were running
 * (named by the dead worker's beacon) and plugin modules whose loading killed a worker.
 * Every other worker is told at once; a worker that starts later is told by `tell`.
 */
export class Quarantine {
  readonly #log: Logger;
  /** Every worker process of the supervisor (serving and spare). */
  readonly #workers: () => WorkerState[];
  #quarantined = new Map<string, Quarantined>();
  /** Plugin modules (by beacon tag) whose loading wedged a worker: no worker runs them again. */
  #refusedModules = new Set<number>();

  constructor(log: Logger, workers: () => WorkerState[]) {
    this.#log = log;
    this.#workers = workers;
  }

  /** For /status and the isogate_plugin_quarantined gauge. */
  values(): Quarantined[] {
    return [...this.#quarantined.values()];
  }

  /** The refused modules, as a worker's ISOGATE_REFUSED_MODULES. */
  refusedModulesEnv(): string {
    return [...this.#refusedModules].join(',');
  }

  /** Tells a worker that has just loaded what is quarantined so far. */
  tell(w: WorkerState): void {
    if (this.#quarantined.size > 0) w.worker.send({ t: 'quarantine', keys: [...this.#quarantined.keys()] } satisfies ToWorker);
  }

  /** Who was running when worker `w` died: the instance its beacon names, quarantined everywhere. */
  blame(w: WorkerState, record: BeaconRecord | null, reason: string): void {
    if (record === null || !record.inCall) return;
    const slot = w.slots.get(record.slot);
    if (slot === undefined) return;
    const inst = slot.instances[record.instance];
    if (inst === undefined) {
      this.#log.error({ worker: w.index, tenant: slot.tenant, reason }, 'worker died in a sandbox call of this tenant; the plugin could not be named');
      return;
    }
    if (this.#quarantined.has(inst.key)) return;
    this.#quarantined.set(inst.key, { key: inst.key, instance: inst.id, tenant: slot.tenant, reason, at: new Date().toISOString() });
    this.#log.error({ worker: w.index, tenant: slot.tenant, instance: inst.id, reason }, 'plugin instance quarantined: it was running when its worker died');
    this.#tellOthers(w, { t: 'quarantine', keys: [inst.key] });
  }

  /** The worker died loading a plugin module (config compile time): no worker loads that module again. */
  refuse(w: WorkerState, loading: { tag: number; source: string }, reason: string): void {
    if (this.#refusedModules.has(loading.tag)) return;
    this.#refusedModules.add(loading.tag);
    const instance = `module ${basename(loading.source)}`;
    this.#quarantined.set(`module:${loading.tag}`, { key: `module:${loading.tag}`, instance, tenant: '', reason, at: new Date().toISOString() });
    this.#log.error({ worker: w.index, module: loading.source, reason }, 'plugin module quarantined: its worker died loading it; configs that use it are refused');
    this.#tellOthers(w, { t: 'quarantine', keys: [], modules: [loading.tag] });
  }

  #tellOthers(dead: WorkerState, m: ToWorker): void {
    for (const other of this.#workers()) {
      if (other !== dead && other.worker.isConnected()) other.worker.send(m);
    }
  }
}
