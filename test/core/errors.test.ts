import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ERRORS, errorBody, type ErrorCode } from '../../core/errors.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CODES = Object.keys(ERRORS) as ErrorCode[];

describe('error catalogue (core/errors.ts)', () => {
  it('declares every code once (a repeated key in the literal would silently win)', () => {
    const source = readFileSync(join(ROOT, 'core', 'errors.ts'), 'utf8');
    const declared = [...source.matchAll(/^\s*(ISG_ERR_[A-Z_]+)\s*:/gm)].map((m) => m[1]);
    expect(declared.length).toBeGreaterThan(0);
    expect(new Set(declared).size).toBe(declared.length);
    expect([...declared].sort()).toEqual([...CODES].sort());
  });

  it('gives every code a stable form, an HTTP error status and a message', () => {
    for (const code of CODES) {
      const e = ERRORS[code];
      expect(code).toMatch(/^ISG_ERR_[A-Z][A-Z_]*[A-Z]$/);
      expect(Number.isInteger(e.status), code).toBe(true);
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.status, code).toBeLessThan(600);
      expect(e.message.trim().length, code).toBeGreaterThan(5);
    }
  });

  it('uses messages without host details', () => {
    for (const code of CODES) expect(ERRORS[code].message, code).not.toMatch(/\d+\.\d+\.\d+\.\d+|localhost|:\d{2,5}\b|\/[a-z]+\//);
  });

  it('encodes error bodies as {error:{code,message,id?}}', () => {
    expect(JSON.parse(errorBody('ISG_ERR_NO_ROUTE'))).toEqual({ error: { code: 'ISG_ERR_NO_ROUTE', message: ERRORS.ISG_ERR_NO_ROUTE.message } });
    expect(JSON.parse(errorBody('ISG_ERR_PLUGIN_FAILED', 'abc123'))).toEqual({ error: { code: 'ISG_ERR_PLUGIN_FAILED', message: ERRORS.ISG_ERR_PLUGIN_FAILED.message, id: 'abc123' } });
  });

  it('names the file and every detail in a ConfigError', () => {
    const e = new ConfigError('/etc/isogate.yaml', ['a: one', 'b: two']);
    expect(e.name).toBe('ConfigError');
    expect(e.message).toBe('/etc/isogate.yaml: invalid config\n  a: one\n  b: two');
  });

  // README.md is written by the lead: this fails until it exists and documents every code.
  it('documents every code in README.md', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const missing = CODES.filter((code) => !readme.includes(code));
    expect(missing).toEqual([]);
  });
});
