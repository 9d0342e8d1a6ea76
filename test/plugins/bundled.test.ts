import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPlugin } from '../../sandbox/plugin-loader.ts';

const DIR = resolve(import.meta.dirname, '..', '..', 'plugins');
const NAMES = readdirSync(DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && /^[a-z0-9][a-z0-9-]*$/.test(d.name))
  .map((d) => d.name);

/** Paths of every schema node under `properties` or `items` that lacks a description. */
function undescribed(node: unknown, at: string, out: string[]): string[] {
  if (node === null || typeof node !== 'object') return out;
  const n = node as Record<string, unknown>;
  if (n.properties !== undefined) {
    for (const [k, v] of Object.entries(n.properties as Record<string, Record<string, unknown>>)) {
      if (typeof v.description !== 'string' || v.description === '') out.push(`${at}.${k}`);
      undescribed(v, `${at}.${k}`, out);
    }
  }
  if (n.items !== undefined) {
    const items = n.items as Record<string, unknown>;
    if (items.$ref === undefined && (typeof items.description !== 'string' || items.description === '')) out.push(`${at}[]`);
    undescribed(items, `${at}[]`, out);
  }
  for (const [k, v] of Object.entries((n.$defs ?? {}) as Record<string, unknown>)) undescribed(v, `${at}.$defs.${k}`, out);
  return out;
}

describe('bundled plugins', () => {
  it('each loads, is named after its folder, and has unique priority', async () => {
    const seen = new Map<number, string>();
    for (const name of NAMES) {
      const info = await loadPlugin(join(DIR, name, 'handler.ts'));
      expect(info.name).toBe(name);
      expect(seen.get(info.priority), `${name} and ${seen.get(info.priority)} share priority ${info.priority}`).toBeUndefined();
      seen.set(info.priority, name);
    }
    expect(NAMES.length).toBeGreaterThanOrEqual(8);
  });

  it('each schema describes itself and every field', () => {
    for (const name of NAMES) {
      const schema = JSON.parse(readFileSync(join(DIR, name, 'schema.json'), 'utf8'));
      expect(typeof schema.description, name).toBe('string');
      expect(undescribed(schema, name, [])).toEqual([]);
    }
  });

  it('each is listed in the README with its config fields', () => {
    const readme = readFileSync(resolve(DIR, '..', 'README.md'), 'utf8');
    for (const name of NAMES) {
      expect(readme, name).toContain(`| \`${name}\``);
      const schema = JSON.parse(readFileSync(join(DIR, name, 'schema.json'), 'utf8'));
      for (const field of Object.keys(schema.properties)) expect(readme, `${name}.${field}`).toContain(`\`${field}\``);
    }
  });
});
