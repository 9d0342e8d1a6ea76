import ivm from 'isolated-vm';
import { prepareModule, type Blank } from './blank.ts';
import type { Fault } from './outcome.ts';
import type { TenantProgram } from './program.ts';
import { KILL_NONE, type WatchCells } from './watchdog.ts';
import { OUTPUT_CAPS } from './limits.ts';

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

/** The CPU limit of plugin `index`'s module code (its load, and its configure): its first instance's. */
export function moduleDeadlineMs(program: TenantProgram, index: number): number {
  const owner = program.instances.findIndex((i) => i.plugin === index);
  return owner >= 0 ? program.instances[owner].cpuMs : ORPHAN_MODULE_MS;
}

/** What loading tells its caller besides the entry points. */
export type LoadHooks = {
  /** Plugin `index` is disabled for this program: record `fault` (its module failed to load, or its configure failed). */
  disable(index: number, fault: Fault): void;
  /** The fault of an isolated-vm error (never a value of the plugin's) while plugin code of `stage` ran. */
  classify(err: unknown, stage: LoadStage): Fault;
  /** The operations of a configure call (its log lines), unchecked: the host validates them. */
  onConfigureOps?(ops: readonly unknown[]): void;
};

export type LoadStage = 'module' | 'configure';

/**
 * Loads a tenant's plugins into a blank isolate, installs its instances and chains, then
 * runs each plugin's configure (Kong 3's) with its instances' configs. The caller has armed
 * the call deadline, the watchdog and the crash beacon; this arms each plugin's own
 * deadline (its first instance's CPU limit) for its module and again for its configure,
 * and names the plugin in the cells while its code runs. A plugin whose module fails to
 * load, or whose configure fails, is disabled through `hooks.disable` (with the fault
 * `hooks.classify` makes of an isolated-vm error, or the runtime's capped text: never a
 * value of the plugin's, which the runtime keeps inside the isolate); if it took the
 * isolate down, RetryLoad is thrown so the caller starts over without it. Plugins already
 * in `broken` are skipped.
 */
export function loadPlugins(blank: Blank, program: TenantProgram, cells: WatchCells, broken: ReadonlyMap<number, Fault>, hooks: LoadHooks): Entry {
  const { isolate, api } = blank;
  const attach = api.getSync('attach', { reference: true }) as ivm.Reference<(...a: unknown[]) => void>;
  attach.applySync(undefined, [new ivm.ExternalCopy(cells.pluginShared).copyInto({ release: true })]);
  attach.release();
  const load = api.getSync('load', { reference: true }) as ivm.Reference<(...a: unknown[]) => unknown>;
  // Plugins whose module exports a configure (api.load says): only they cost a configure crossing.
  const configurable = new Set<number>();
  program.plugins.forEach((plugin, index) => {
    if (broken.has(index)) return;
    const owner = program.instances.findIndex((i) => i.plugin === index);
    cells.current[0] = owner;
    try {
      // A context of the plugin's own, and its bundle as a function: nothing of the plugin
      // has run. The runtime calls it inside its own catch, so what the module throws
      // stays in the isolate (api.load).
      const made = blank.realm;
      blank.realm = null; // one plugin's only
      const mod = prepareModule(isolate, plugin.code, `plugin:${plugin.name}`, made);
      // The module's CPU limit, timed by the sentinel from this step on (sandbox/sentinel.ts).
      cells.pluginDeadline[0] = moduleDeadlineMs(program, index);
      cells.step[0]++;
      const failure = load.applySync(undefined, [index, mod.factory.derefInto(), mod.kit.derefInto()]);
      cells.pluginDeadline[0] = 0;
      mod.factory.release();
      mod.kit.release();
      if (typeof failure === 'string' && failure !== '') {
        hooks.disable(index, { outcome: 'threw', instance: owner, detail: `plugin module failed to load: ${failure}` });
      } else if (failure === 1) configurable.add(index);
    } catch (err) {
      // This plugin cannot load: the tenant's other plugins still can. Remember it, and
      // start over without it if the isolate did not survive.
      cells.pluginDeadline[0] = 0;
      hooks.disable(index, hooks.classify(err, 'module'));
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
  if (configurable.size > 0) configurePlugins(isolate, api, program, cells, configurable, hooks);
  const entry: Entry = {
    run: api.getSync('run', { reference: true }) as Entry['run'],
    collect: api.getSync('collect', { reference: true }) as Entry['collect'],
    runBatch: api.getSync('runBatch', { reference: true }) as Entry['runBatch'],
    resume: api.getSync('resume', { reference: true }) as Entry['resume'],
  };
  api.release();
  return entry;
}

/**
 * Runs the configure of each plugin in `configurable` (loaded, and exporting one) under the
 * plugin's CPU limit, as its module ran, in plugin order. A failure disables the plugin; a
 * stop (the watchdog disposed the isolate) throws RetryLoad, as for a module.
 */
function configurePlugins(isolate: ivm.Isolate, api: Blank['api'], program: TenantProgram, cells: WatchCells, configurable: ReadonlySet<number>, hooks: LoadHooks): void {
  const configure = api.getSync('configure', { reference: true }) as ivm.Reference<(index: number, owner: number) => unknown>;
  try {
    program.plugins.forEach((_plugin, index) => {
      if (!configurable.has(index)) return;
      const owner = program.instances.findIndex((i) => i.plugin === index);
      cells.current[0] = owner;
      try {
        cells.pluginDeadline[0] = moduleDeadlineMs(program, index);
        cells.step[0]++;
        const out = configure.applySync(undefined, [index, owner]);
        cells.pluginDeadline[0] = 0;
        // The watchdog may have judged this plugin's limit passed just as the call returned
        // (its microtasks count): the stop is this plugin's, not the next one's.
        if (cells.killed[0] !== KILL_NONE || isolate.isDisposed) throw new Error('stopped as its configure returned');
        const r = decodeConfigure(out);
        if (r.ops.length > 0) hooks.onConfigureOps?.(r.ops);
        if (r.failure !== '') hooks.disable(index, { outcome: r.outcome, instance: owner, detail: `plugin configure failed: ${r.failure}` });
      } catch (err) {
        cells.pluginDeadline[0] = 0;
        hooks.disable(index, hooks.classify(err, 'configure'));
        // stopped or going down (the watchdog sets its flag before it disposes): start over without it
        if (isolate.isDisposed || cells.killed[0] !== KILL_NONE) throw new RetryLoad();
      }
    });
  } finally {
    configure.release();
  }
}

/**
 * api.configure's result: JSON [failure, ops] the runtime made (plain strings and numbers).
 * Anything else is a bug of ours or a forgery, and fails the plugin as a bad return.
 */
function decodeConfigure(out: unknown): { failure: string; ops: readonly unknown[]; outcome: 'threw' | 'bad_return' } {
  if (typeof out === 'string' && out.length <= OUTPUT_CAPS.maxResultBytes) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(out);
    } catch {
      parsed = null;
    }
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && Array.isArray(parsed[1])) {
      return { failure: parsed[0].slice(0, 1024), ops: parsed[1] as unknown[], outcome: 'threw' };
    }
  }
  return { failure: 'its result has the wrong shape', ops: [], outcome: 'bad_return' };
}
