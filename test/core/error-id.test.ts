import { describe, expect, it } from 'vitest';
import { newErrorId } from '../../core/error-id.ts';

describe('newErrorId', () => {
  it('gives 16 hex digits, never the same twice, across refills of its entropy pool', () => {
    const ids = Array.from({ length: 2000 }, () => newErrorId()); // ~4 refills of 512
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
