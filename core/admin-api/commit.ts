import type { ConfigInput } from '../config/types.ts';
import type { ReloadResult } from '../gateway/config-swap.ts';
import { ApiError, invalid, writeAtomic, type Committer } from './store.ts';

/**
 * One process (workers: 0): the gateway compiles and swaps the new config in (its reload
 * path), then the file is written. A write that fails puts the old config back.
 */
export function singleProcessCommitter(file: string, apply: (input: ConfigInput) => Promise<ReloadResult>): Committer {
  return async (next, prev) => {
    const r = await apply(next.input);
    if (!r.ok) throw r.details !== undefined ? invalid(r.details) : new ApiError('ISG_ERR_ADMIN_STORE', r.error);
    try {
      await writeAtomic(file, next.text);
    } catch (err) {
      await apply(prev.input);
      throw new ApiError('ISG_ERR_ADMIN_STORE', `the config file could not be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; the change was undone`);
    }
  };
}

/**
 * Under a supervisor: the supervisor never compiles plugins (that runs plugin code), so it
 * writes the file and has every worker reload it, waiting for each answer. If one refuses,
 * the old file is written back and the workers reload it; the answer carries their error.
 */
export function supervisorCommitter(file: string, reloadAll: () => Promise<string[]>, onWrite: () => void): Committer {
  return async (next, prev) => {
    try {
      onWrite();
      await writeAtomic(file, next.text);
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_STORE', `the config file could not be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const errors = await reloadAll();
    if (errors.length === 0) return;
    onWrite();
    await writeAtomic(file, prev.text);
    await reloadAll();
    const first = errors[0];
    if (first.startsWith('reload failed:') || first.startsWith('worker ')) throw new ApiError('ISG_ERR_ADMIN_STORE', `a worker did not take the change (${first}); the file was restored`);
    throw invalid(configErrorDetails(first));
  };
}

/** The details of a ConfigError's message (`file: invalid config\n  a\n  b`): its lines after the first, continuation lines kept. */
function configErrorDetails(message: string): string[] {
  return message.split('\n').slice(1).join('\n').split(/\n {2}(?! )/).map((l) => l.replace(/^ {2}/, ''));
}
