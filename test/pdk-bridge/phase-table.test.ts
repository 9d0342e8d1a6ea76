// One phase table (pdk-bridge/phases.ts): the host's and the in-isolate runtime's views agree,
// and no runtime file writes a phase bit or name of its own.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type ivm from 'isolated-vm';
import { describe, expect, it } from 'vitest';
import { CONFIGURE, EARLY_HEADER_FILTER, HANDLER_NAMES, HANDLER_PHASE, PHASE, PHASE_MASKS, PHASE_NAME, PHASE_ORDER } from '../../pdk-bridge/phases.ts';
import { OP_PHASES } from '../../pdk-bridge/host/ops.ts';
import { SERVICES } from '../../pdk-bridge/host/services/index.ts';
import { createBlank } from '../../sandbox/blank.ts';

const RUNTIME_DIR = join(import.meta.dirname, '..', '..', 'pdk-bridge', 'runtime');

describe('the phase table', () => {
  it('the runtime reads the same bits, names, order, handler names and masks as the host', () => {
    const { isolate, api } = createBlank(16);
    try {
      const fn = api.getSync('phases', { reference: true }) as ivm.Reference<() => string>;
      const got = JSON.parse(fn.applySync(undefined, [])) as Record<string, Record<string, unknown>>;
      expect(got.bits).toEqual(PHASE);
      expect(got.configure).toBe(CONFIGURE);
      expect(got.order).toEqual(PHASE_ORDER);
      const names = Object.fromEntries(Object.entries(PHASE_NAME));
      expect(got.names).toEqual(names);
      expect(got.handlers).toEqual(names);
      for (const k of Object.keys(got.masks)) expect(got.masks[k]).toBe(PHASE_MASKS[k as keyof typeof PHASE_MASKS]);
      expect(PHASE.RESPONSE).toBe(16);
    } finally {
      isolate.dispose();
    }
  });

  it('handler names map back to their bits, in Kong order', () => {
    expect(HANDLER_NAMES).toEqual(['rewrite', 'access', 'response', 'headerFilter', 'bodyFilter', 'log']);
    for (const b of PHASE_ORDER) expect(HANDLER_PHASE[PHASE_NAME[b]]).toBe(b);
  });

  it('every operation the host accepts is allowed only in known phases (configure: only log lines)', () => {
    const all = PHASE_MASKS.WITHOUT_REQUEST;
    for (const [op, mask] of Object.entries(OP_PHASES)) expect(mask & ~all, op).toBe(0);
    for (const [op, mask] of Object.entries(OP_PHASES)) expect((mask & CONFIGURE) !== 0, op).toBe(op === 'log');
  });

  it('configure is not a request phase: its own bit, named, outside the order and the handler names', () => {
    expect(CONFIGURE & PHASE_MASKS.ANY_PHASE).toBe(0);
    expect(PHASE_NAME[CONFIGURE]).toBe('configure');
    expect(PHASE_ORDER).not.toContain(CONFIGURE);
    expect(HANDLER_NAMES).not.toContain('configure');
    expect(PHASE_MASKS.WITHOUT_REQUEST).toBe(PHASE_MASKS.ANY_PHASE | CONFIGURE);
  });

  it('chains wait only where Kong allows cosockets: never in headerFilter or bodyFilter', () => {
    expect(PHASE_MASKS.ASYNC_PHASES).toBe(PHASE.REWRITE | PHASE.ACCESS | PHASE.RESPONSE | PHASE.LOG);
    expect(PHASE_MASKS.ASYNC_PHASES & (PHASE.HEADER_FILTER | PHASE.BODY_FILTER)).toBe(0);
    // the consumer lookups are async calls: never in a phase that cannot wait
    expect(PHASE_MASKS.LOOKUP_PHASES & ~PHASE_MASKS.ASYNC_PHASES).toBe(0);
    expect(PHASE_MASKS.BEFORE_UPSTREAM & ~PHASE_MASKS.ASYNC_PHASES).toBe(0);
    // and the host's services (which check the phase again) allow none elsewhere
    for (const svc of SERVICES) for (const [m, def] of Object.entries(svc.methods)) expect(def.phases & ~PHASE_MASKS.ASYNC_PHASES, `${svc.name}.${m}`).toBe(0);
  });

  it('an early headerFilter may do what headerFilter may, except read the response', () => {
    // A mask naming headerFilter for something other than reading the response must name
    // the early headerFilter too (a new mask that forgets it refuses that call in early chains).
    const readsResponse = new Set(['HAS_RESPONSE', 'HAS_SERVICE_RESPONSE', 'HAS_SERVICE_BODY', 'EXCLUDED_BY_RESPONSE']);
    for (const [name, mask] of Object.entries(PHASE_MASKS)) {
      if ((mask & PHASE.HEADER_FILTER) === 0) expect(mask & EARLY_HEADER_FILTER, name).toBe(0);
      else expect(mask & EARLY_HEADER_FILTER, name).toBe(readsResponse.has(name) ? 0 : EARLY_HEADER_FILTER);
    }
    expect(Object.values(PHASE)).not.toContain(EARLY_HEADER_FILTER);
  });

  it('no runtime file defines a phase bit, name list or mask of its own', () => {
    for (const f of readdirSync(RUNTIME_DIR).filter((n) => n.endsWith('.js') || n.endsWith('.ts'))) {
      const src = readFileSync(join(RUNTIME_DIR, f), 'utf8');
      // a bit written as a number, or a mask spelled out from the bits
      expect(src, f).not.toMatch(/\b(REWRITE|ACCESS|HEADER_FILTER|BODY_FILTER|RESPONSE|LOG|CONFIGURE)\s*=\s*\d/);
      expect(src, f).not.toMatch(/=\s*(REWRITE|ACCESS|HEADER_FILTER|BODY_FILTER|RESPONSE|LOG)\s*\|/);
      expect(src, f).not.toMatch(/['"]headerFilter['"]\s*[,}]/);
    }
  });
});
