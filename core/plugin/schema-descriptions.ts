/**
 * The fields of a plugin's config schema that have no `description`. The description is
 * what the admin API, the docs and an operator reading a refused config see: a plugin
 * folder's schema.json must describe every field, and the load says which ones do not.
 *
 * A field is a property under `properties` or `patternProperties` (anywhere: nested
 * objects, array items, `$defs`, combinators). Returns dotted paths like `request.set`.
 */
export function undescribedFields(schema: unknown): string[] {
  const missing: string[] = [];
  walk(schema, '', missing);
  return missing;
}

type Schema = Record<string, unknown>;

const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

function walk(s: unknown, at: string, missing: string[]): void {
  if (!isSchema(s)) return;
  for (const key of ['properties', 'patternProperties'] as const) {
    const props = s[key];
    if (!isSchema(props)) continue;
    for (const [name, sub] of Object.entries(props)) {
      const field = at === '' ? name : `${at}.${name}`;
      if (!isSchema(sub) || typeof sub.description !== 'string' || sub.description.trim() === '') missing.push(field);
      walk(sub, field, missing);
    }
  }
  walk(s.items, `${at}[]`, missing);
  walk(s.contains, `${at}[]`, missing);
  walk(s.additionalProperties, at === '' ? '*' : `${at}.*`, missing);
  for (const key of ['not', 'if', 'then', 'else']) walk(s[key], at, missing);
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) {
    const list = s[key];
    if (Array.isArray(list)) for (const sub of list) walk(sub, at, missing);
  }
  for (const key of ['$defs', 'definitions']) {
    const defs = s[key];
    if (isSchema(defs)) for (const [name, sub] of Object.entries(defs)) walk(sub, `${key}.${name}`, missing);
  }
}
