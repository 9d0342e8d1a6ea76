import type { Pdk } from '../../pdk-bridge/types.ts';
import { parseTemplate, render, type Template } from './template.ts';

/**
 * Kong's request-transformer body part: remove, rename, replace, add, append of top-level
 * fields of a JSON object or an application/x-www-form-urlencoded body, in that order.
 * Values may hold templates; `json_types` (by position in each step's list) make a JSON
 * value a number or a boolean. Other bodies go upstream untouched: no body, a JSON body
 * that is not an object or does not parse (Kong's), one over the gateway's body buffer cap
 * (null), and multipart (re-encoding it through the PDK would lose the parts' file names
 * and types).
 */
type JsonType = 'boolean' | 'number' | 'string';
type Entry = readonly [string, Template, JsonType];
export type BodyStep = { remove: string[]; rename: (readonly [string, string])[]; replace: Entry[]; add: Entry[]; append: Entry[] };
type Part = { body: readonly string[]; json_types?: readonly JsonType[] };
export type BodyConfig = { remove: Part; rename: Part; replace: Part; add: Part; append: Part };

function split(entry: string): [string, string] {
  const i = entry.indexOf(':');
  return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
}

function entries(p: Part, step: string): Entry[] {
  return p.body.map((e, i) => {
    const [n, v] = split(e);
    return [n, parseTemplate(v, `${step}.body[${i}]`), p.json_types?.[i] ?? 'string'] as const;
  });
}

/** The body step of a config, or null when it edits no body field. */
export function bodyStep(c: BodyConfig): BodyStep | null {
  const s: BodyStep = {
    remove: [...c.remove.body],
    rename: c.rename.body.map((e) => split(e)),
    replace: entries(c.replace, 'replace'),
    add: entries(c.add, 'add'),
    append: entries(c.append, 'append'),
  };
  return s.remove.length + s.rename.length + s.replace.length + s.add.length + s.append.length === 0 ? null : s;
}

/** Kong's convert_value: a JSON value of the entry's type (a number that does not parse stays text). */
function typed(v: string, type: JsonType, json: boolean): unknown {
  if (!json || type === 'string') return v;
  if (type === 'boolean') return v.toLowerCase() === 'true';
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : v;
}

/** Kong's append_value: text becomes a list of both, a list grows, nothing becomes a list of one. */
function appended(prev: unknown, v: unknown): unknown {
  if (Array.isArray(prev)) return [...prev, v];
  if (prev === undefined || prev === null || typeof prev === 'object') return [v];
  return [prev, v];
}

const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i;
const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;

export function editBody(pdk: Pdk, s: BodyStep): void {
  const type = pdk.request.getHeader('content-type');
  if (typeof type !== 'string') return;
  const json = JSON_TYPE.test(type);
  if (!json && !FORM_TYPE.test(type)) return;
  let parsed: unknown;
  try {
    parsed = pdk.request.getBody();
  } catch {
    return; // Kong's: a body that does not parse goes up as it came
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return;
  // a Map, not the object: a field named __proto__ stays a field
  const m = new Map<string, unknown>(Object.entries(parsed));
  const before = m.size;
  let changed = false;
  for (const n of s.remove) changed = m.delete(n) || changed;
  for (const [from, to] of s.rename) {
    if (!m.has(from)) continue;
    const v = m.get(from);
    m.delete(from);
    m.set(to, v);
    changed = true;
  }
  for (const [n, t, ty] of s.replace) {
    if (!m.has(n)) continue;
    m.set(n, typed(render(pdk, t), ty, json));
    changed = true;
  }
  for (const [n, t, ty] of s.add) {
    if (m.has(n)) continue;
    m.set(n, typed(render(pdk, t), ty, json));
    changed = true;
  }
  for (const [n, t, ty] of s.append) {
    m.set(n, appended(m.get(n), typed(render(pdk, t), ty, json)));
    changed = true;
  }
  if (!changed && m.size === before) return;
  // Object.fromEntries defines own properties (never calls a __proto__ setter)
  pdk.serviceRequest.setBody(Object.fromEntries(m));
}
