import { beacon } from '../../sandbox/beacon.ts';
import { TenantSandbox } from '../../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';
import type { CompiledConfig } from './compile.ts';

/**
 * `isogate --check`'s last step: builds each tenant's isolate as a worker would (its
 * plugins' modules loaded, then their configure run with the real configs, under the real
 * limits) and returns one line per plugin that would be disabled. Compiling already ran
 * each module once, without configs, in a throwaway isolate; only here does configure
 * run. One isolate at a time, disposed at once.
 */
export async function checkTenantLoads(compiled: CompiledConfig): Promise<string[]> {
  const watchdog = new Watchdog();
  const problems: string[] = [];
  try {
    await beacon.ready(); // the sentinel judges CPU limits: without it a spinning configure would not be stopped
    for (const [tenant, program] of compiled.programs) {
      if (program.chains.length === 0) continue;
      const sb = new TenantSandbox(program, watchdog);
      try {
        sb.warm();
      } catch (err) {
        problems.push(`tenant "${tenant}": its isolate could not be built: ${String((err as Error)?.message).slice(0, 300)}`);
      }
      for (const fault of sb.disabledPlugins.values()) {
        const inst = program.instances[fault.instance];
        problems.push(`tenant "${tenant}": plugin "${inst?.name ?? 'unknown'}" would be disabled (${fault.outcome}): ${fault.detail}`);
      }
      sb.dispose();
    }
  } finally {
    // isolated-vm crashes a process that exits while the watchdog runs: stop it first.
    await watchdog.stop();
  }
  return problems;
}
