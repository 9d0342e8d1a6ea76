import ivm from 'isolated-vm';
import { prepareModule, type Blank } from './blank.ts';
import type { Fault } from './outcome.ts';
import type { TenantProgram } from './program.ts';
import type { WatchCells } from './watchdog.ts';

/** The runtime's entry points of a loaded tenant isolate. */
export type Entry = {
  run: ivm.Reference<(...args: unknown[]) => string | undefined>;
  collect: ivm.Reference<() => string | undefined>;
  runBatch: ivm.Reference<(...args: unknown[]) => string | undefined>;
  resume: ivm.Reference<(...args: unknown[]) => string | undefined>;
};

/** Thrown while loading when a plugin's module disposed the isolate: load again without it. */
export class RetryLoad extends Error {}

/** Deadline of a module whose plugin has no instance (it is loaded, never called). */
const ORPHAN_MODULE_MS = 20;

/**
 * Loads a tenant's plugins into a blank isolate and installs its instances and chains.
 * The caller has armed the call deadline, the watchdog and the crash beacon; this arms each
 * module's own deadline (its first instance's CPU limit) and names the plugin in the cells
 * while its code runs. A module that fails to load is recorded in `broken` (with the fault
 * `classify` makes of an isolated-vm error; never a value of the plugin's, which the runtime
 * keeps inside the isolate) and left out; if it took the isolate down, RetryLoad is thrown
 * so the caller starts over without it. Modules already in `broken` are skipped.
 */
export function loadPlugins(blank: Blank, program: TenantProgram, cells: WatchCells, broken: Map<number, Fault>, classify: (err: unknown) => Fault): Entry {
  const { isolate, api } = blank;
  const attach = api.getSync('attach', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
  attach.applySync(undefined, [new ivm.ExternalCopy(cells.pluginShared).copyInto({ release: true })]);
  attach.release();
  const load = api.getSync('load', { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
  program.plugins.forEach((plugin, index) => {
    if (broken.has(index)) return;
    const owner = program.instances.findIndex((i) => i.plugin === index);
    cells.current[0] = owner;
    try {
      // A context of the plugin's own, and its bundle as a function: nothing of the plugin
      // has run. The runtime calls it inside its own catch, so what the module throws
      // stays in the isolate (api.load).
      const mod = prepareModule(isolate, plugin.code, `plugin:${plugin.name}`);
      // The module's CPU limit, timed by the sentinel from this step on (sandbox/sentinel.ts).
      cells.pluginDeadline[0] = owner >= 0 ? program.instances[owner].cpuMs : ORPHAN_MODULE_MS;
      cells.step[0]++;
      const failure = load.applySync(undefined, [index, mod.factory.derefInto(), mod.kit.derefInto()]);
      cells.pluginDeadline[0] = 0;
      mod.factory.release();
      mod.kit.release();
      if (typeof failure === 'string' && failure !== '') {
        broken.set(index, { outcome: 'threw', instance: owner, detail: `plugin module failed to load: ${failure}` });
      }
    } catch (err) {
      // This plugin cannot load: the tenant's other plugins still can. Remember it, and
      // start over without it if the isolate did not survive.
      cells.pluginDeadline[0] = 0;
      broken.set(index, classify(err));
      if (isolate.isDisposed) throw new RetryLoad();
    }
  });
  load.release();
  const setup = api.getSync('setup', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
  setup.applySync(undefined, [JSON.stringify({
    instances: program.instances.map((i) => ({ plugin: i.plugin, name: i.name, config: i.config, cpuMs: i.cpuMs, failOpen: i.failOpen })),
    chains: program.chains,
    families: program.families,
    chainFamily: program.chainFamily,
    ranks: program.ranks,
  })]);
  setup.release();
  const entry: Entry = {
    run: api.getSync('run', { reference: true }) as Entry['run'],
    collect: api.getSync('collect', { reference: true }) as Entry['collect'],
    runBatch: api.getSync('runBatch', { reference: true }) as Entry['runBatch'],
    resume: api.getSync('resume', { reference: true }) as Entry['resume'],
  };
  api.release();
  return entry;
}
