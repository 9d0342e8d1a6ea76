import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's request-transformer templates in values: `$(headers.x_api_key)` (underscores as
 * dashes), `$(headers["X-Api-Key"])`, `$(query_params.page)`, `$(uri_captures.id)`, string
 * literals, and `or` between them: `$(query_params.v or headers.v or 'v1')`. Kong runs Lua
 * there; these forms are what its docs show, parsed once per config. A missing value renders
 * as "" (routes have no regex captures here: uri_captures are always missing).
 */
type Source = { kind: 'headers' | 'query_params' | 'uri_captures' | 'literal'; name: string };
/** A value: plain text, or pieces of text and expressions (each a list of `or` alternatives). */
export type Template = string | (string | Source[])[];

const NAME = String.raw`[A-Za-z_][A-Za-z0-9_]*`;
const QUOTED = String.raw`"[^"]*"|'[^']*'`;
const TERM = new RegExp(String.raw`^\s*(?:(headers|query_params|uri_captures)(?:\.(${NAME})|\[\s*(${QUOTED})\s*\])|(${QUOTED}))\s*$`);

function term(text: string, where: string): Source {
  const m = TERM.exec(text);
  if (m === null) throw new TypeError(`request-transformer: ${where}: unsupported template expression ${JSON.stringify(text.slice(0, 80))}`);
  if (m[4] !== undefined) return { kind: 'literal', name: m[4].slice(1, -1) };
  const kind = m[1] as Source['kind'];
  if (m[2] !== undefined) return { kind, name: kind === 'headers' ? m[2].replace(/_/g, '-') : m[2] };
  return { kind, name: m[3].slice(1, -1) };
}

/** Parses `value`; plain text (no `$(`) stays a string, so it costs nothing per request. */
export function parseTemplate(value: string, where: string): Template {
  if (!value.includes('$(')) return value;
  const parts: (string | Source[])[] = [];
  let i = 0;
  while (i < value.length) {
    const start = value.indexOf('$(', i);
    if (start < 0) {
      parts.push(value.slice(i));
      break;
    }
    if (start > i) parts.push(value.slice(i, start));
    // the closing ')' is the first one outside quotes
    let j = start + 2;
    let quote = '';
    for (; j < value.length; j++) {
      const c = value[j];
      if (quote !== '') {
        if (c === quote) quote = '';
      } else if (c === '"' || c === "'") quote = c;
      else if (c === ')') break;
    }
    if (j >= value.length) throw new TypeError(`request-transformer: ${where}: unclosed template in ${JSON.stringify(value.slice(0, 80))}`);
    parts.push(value.slice(start + 2, j).split(/\s+or\s+/).map((t) => term(t, where)));
    i = j + 1;
  }
  return parts;
}

function lookup(pdk: Pdk, s: Source): string | undefined {
  let v: string | string[] | undefined;
  if (s.kind === 'literal') return s.name;
  if (s.kind === 'headers') v = pdk.request.getHeader(s.name);
  else if (s.kind === 'query_params') v = pdk.request.getQueryArg(s.name);
  else return undefined;
  return Array.isArray(v) ? v[0] : v;
}

export function render(pdk: Pdk, t: Template): string {
  if (typeof t === 'string') return t;
  let out = '';
  for (const p of t) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    let v: string | undefined;
    for (let k = 0; k < p.length && v === undefined; k++) v = lookup(pdk, p[k]);
    out += v ?? '';
  }
  return out;
}
