import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument, type YAMLError } from 'yaml';
import { ConfigError } from '../errors.ts';
import { CONFIG_SCHEMA } from './schema.ts';
import type { ConfigInput } from './types.ts';

// verbose: errors carry the offending value and its schema (describeAjvError quotes both).
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validate = ajv.compile(CONFIG_SCHEMA);

/** `/tenants/0/routes/1/paths` -> `tenants[0].routes[1].paths`. */
export function fieldPath(pointer: string): string {
  if (pointer === '') return '(root)';
  return pointer
    .slice(1)
    .split('/')
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc === '' ? seg : `${acc}.${seg}`), '');
}

export function describeAjvError(e: ErrorObject): string {
  const at = fieldPath(e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case 'required':
      return `${at}: missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
    case 'enum':
      return `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${at}: ${JSON.stringify(e.data)} does not have the expected form (${e.parentSchema?.description ?? (e.params as { pattern: string }).pattern})`;
    default:
      return `${at}: ${e.message ?? 'is invalid'}`;
  }
}

/**
 * `file:line:col: YAML CODE: what is wrong`, then yaml's excerpt of the lines around it with
 * a caret, indented under the detail (the excerpt is what makes an indentation slip visible).
 */
export function describeYamlError(e: YAMLError, file: string): string {
  const [head, ...frame] = e.message.split('\n');
  const what = head.replace(/ at line \d+, column \d+:?$/, '');
  const pos = e.linePos?.[0];
  const where = pos === undefined ? file : `${file}:${pos.line}:${pos.col}`;
  const excerpt = frame.join('\n').replace(/^\n+/, '').trimEnd();
  return `${where}: YAML ${e.code}: ${what}${excerpt === '' ? '' : `\n    ${excerpt.replaceAll('\n', '\n    ')}`}`;
}

/** Parses and validates YAML text. Throws ConfigError naming `file` and each bad field. */
export function parseConfig(text: string, file: string): ConfigInput {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(file, doc.errors.map((e) => describeYamlError(e, file)));
  return validateConfig(doc.toJS() ?? {}, file);
}

/**
 * Validates parsed config data against the schema (applying defaults in place). Throws
 * ConfigError naming `file` and each bad field. The admin API validates its changes here,
 * so they get the same messages as the file.
 */
export function validateConfig(data: unknown, file: string): ConfigInput {
  if (!validate(data)) {
    const seen = new Set<string>();
    const lines = (validate.errors ?? []).map(describeAjvError).filter((l) => !seen.has(l) && seen.add(l));
    throw new ConfigError(file, lines);
  }
  return data as unknown as ConfigInput;
}

/** Reads, parses and validates a config file. */
export async function loadConfigFile(file: string): Promise<ConfigInput> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfig(text, file);
}
