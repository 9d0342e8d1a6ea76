import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../core/errors.ts';
import { InstanceGate } from '../../sandbox/breaker.ts';
import { OUTCOME, OUTCOMES, type FaultOutcome } from '../../sandbox/outcome.ts';
import { decodeParsed } from '../../sandbox/run-result.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FAULTS = OUTCOMES.filter((o) => o !== 'ok') as FaultOutcome[];

describe('the outcome table (sandbox/outcome.ts)', () => {
  it('gives every fault a status that agrees with its error code in core/errors.ts', () => {
    for (const o of FAULTS) {
      const row = OUTCOME[o];
      expect(row.error, o).not.toBe('');
      expect(ERRORS[row.error as keyof typeof ERRORS].status, o).toBe(row.status);
    }
    expect(OUTCOME.ok.status).toBe(0);
  });

  it('drives the breaker: a fault counts exactly when its row says so', () => {
    for (const o of FAULTS) {
      const gate = new InstanceGate(1, { faults: 1, windowMs: 60_000, cooldownMs: 60_000 });
      expect(gate.fault(0, o), o).toBe(OUTCOME[o].breaker);
    }
  });

  it('decides which outcomes the runtime may report: any other is taken as a forgery (bad_return)', () => {
    for (const o of FAULTS) {
      const r = decodeParsed([[], [[0, o, 'x']]], 0, 1, '');
      expect(r.faults[0].outcome, o).toBe(OUTCOME[o].fromRuntime ? o : 'bad_return');
    }
  });

  it('is the only place that maps outcomes: no comparison with an outcome name elsewhere', () => {
    const files = ['pdk-bridge/host/phase-call.ts', 'sandbox/phase-caller.ts', 'core/proxy.ts', 'core/exchange-state.ts', 'core/before-upstream.ts', 'core/response-writing.ts', 'core/log-queue.ts', 'sandbox/breaker.ts', 'sandbox/guarded-call.ts', 'sandbox/tenant-sandbox.ts', 'sandbox/run-result.ts'];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      expect(text, f).not.toMatch(/outcome\s*===?\s*'|'(?:breaker_open|quarantined|cpu|wall)'\s*\|\|/);
    }
  });
});
