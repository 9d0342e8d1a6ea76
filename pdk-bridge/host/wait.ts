import { DEFAULT_LIMITS } from '../../sandbox/limits.ts';
import { failed, type RunResult } from '../../sandbox/run-result.ts';
import { ANSWER_TIMEOUT, Suspended, type Answer, type AsyncRequest } from '../../sandbox/suspended.ts';
import type { PhaseCaller } from '../../sandbox/phase-caller.ts';
import type { ConsumerIndex } from '../../core/consumers/index.ts';
import type { HostServices } from './services/index.ts';

type InFlight = { readonly instance: number; answer: Answer | null; readonly done: Promise<void> };

/**
 * Drives a suspended chain to its end: performs its requests on the event loop (never
 * blocking), resumes it with the answers, and again while it suspends. Each instance gets
 * its wallMs from its first async call in the phase; when that passes, its unanswered
 * calls are answered `timeout` (its handler ends as that fault). Requests of other
 * instances still running are carried over to the next resume. `meter(t0)` is called
 * after each crossing that started at t0 (the sandbox charges the tenant itself). `consumers`: the index of
 * the request's route, what client lookups read.
 */
export async function settleChain(sb: PhaseCaller, first: Suspended, services: HostServices, meter: (t0: number) => void, consumers?: ConsumerIndex): Promise<RunResult> {
  const tenant = services.forProgram(sb.program);
  const instances = sb.program.instances;
  const deadlines = new Map<number, number>();
  const inflight = new Map<number, InFlight>();
  const http = { n: 0 };
  const passwords = { n: 0 };
  let s = first;
  for (;;) {
    const now = performance.now();
    for (const req of s.requests) {
      let deadline = deadlines.get(req.instance);
      if (deadline === undefined) deadlines.set(req.instance, (deadline = now + (instances[req.instance]?.wallMs ?? DEFAULT_LIMITS.wallMs)));
      const entry: { instance: number; answer: Answer | null; done: Promise<void> } = { instance: req.instance, answer: null, done: Promise.resolve() };
      entry.done = services.perform(req, s.phase, { services: tenant, instance: req.instance, deadline, http, consumers, passwords }).then((a) => {
        entry.answer = a;
      });
      inflight.set(req.id, entry);
    }
    if (inflight.size === 0) return failed('wall', -1, 'a suspended chain waits on no async call');
    let earliest = Infinity;
    for (const e of inflight.values()) earliest = Math.min(earliest, deadlines.get(e.instance)!);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(Array.from(inflight.values(), (e) => e.done)),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.max(0, earliest - performance.now())); }),
    ]);
    clearTimeout(timer);
    const answers: Answer[] = [];
    const t = performance.now();
    for (const [id, e] of inflight) {
      if (e.answer !== null) answers.push(e.answer);
      else if (deadlines.get(e.instance)! <= t + 1) answers.push([id, ANSWER_TIMEOUT, `the plugin's wall time of ${instances[e.instance]?.wallMs} ms (wallMs) ran out while it waited`]);
      else continue;
      inflight.delete(id);
    }
    const t0 = performance.now();
    const r = sb.resume(s, JSON.stringify(answers));
    meter(t0);
    if (!(r instanceof Suspended)) return r;
    s = r;
  }
}

/** Performs the calls a finished chain left unawaited; their answers go to nobody. */
export function performDetached(sb: PhaseCaller, requests: readonly AsyncRequest[], phase: number, services: HostServices, consumers?: ConsumerIndex): void {
  const tenant = services.forProgram(sb.program);
  const http = { n: 0 };
  const passwords = { n: 0 };
  const now = performance.now();
  for (const req of requests) {
    const deadline = now + (sb.program.instances[req.instance]?.wallMs ?? DEFAULT_LIMITS.wallMs);
    void services.perform(req, phase, { services: tenant, instance: req.instance, deadline, http, consumers, passwords });
  }
}
