import type { Worker } from 'node:cluster';
import type { ConfigInput } from '../config/types.ts';
import type { ReloadResult } from '../gateway.ts';
import type { ToSupervisor, ToWorker } from '../supervisor.ts';
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
export function supervisorCommitter(file: string, workers: () => Worker[], onWrite: () => void, timeoutMs = 30_000): Committer {
  return async (next, prev) => {
    try {
      onWrite();
      await writeAtomic(file, next.text);
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_STORE', `the config file could not be written: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const errors = await reloadRound(workers(), timeoutMs);
    if (errors.length === 0) return;
    onWrite();
    await writeAtomic(file, prev.text);
    await reloadRound(workers(), timeoutMs);
    const first = errors[0];
    if (first.startsWith('reload failed:') || first.startsWith('worker ')) throw new ApiError('ISG_ERR_ADMIN_STORE', `a worker did not take the change (${first}); the file was restored`);
    throw invalid(configErrorDetails(first));
  };
}

/** The details of a ConfigError's message (`file: invalid config\n  a\n  b`): its lines after the first, continuation lines kept. */
function configErrorDetails(message: string): string[] {
  return message.split('\n').slice(1).join('\n').split(/\n {2}(?! )/).map((l) => l.replace(/^ {2}/, ''));
}

/** Sends `reload` to every worker and resolves with the errors of those that refused or did not answer. */
export function reloadRound(list: Worker[], timeoutMs: number): Promise<string[]> {
  return Promise.all(
    list.map(
      (w) =>
        new Promise<string | null>((resolve) => {
          const done = (v: string | null) => {
            clearTimeout(timer);
            w.off('message', onMessage);
            w.off('exit', onExit);
            resolve(v);
          };
          const onMessage = (m: ToSupervisor) => {
            if (m.t === 'reloaded') done(m.ok ? null : (m.error ?? 'reload failed: no reason given'));
          };
          const onExit = () => done(null); // a dead worker is replaced by one that loads the file as it is now
          const timer = setTimeout(() => done(`worker ${w.id} did not answer the reload within ${timeoutMs} ms`), timeoutMs);
          w.on('message', onMessage);
          w.on('exit', onExit);
          w.send({ t: 'reload' } satisfies ToWorker);
        }),
    ),
  ).then((r) => r.filter((e): e is string => e !== null));
}
