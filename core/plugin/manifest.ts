import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { HANDLER_NAMES } from '../../pdk-bridge/phases.ts';
import { describeAjvError } from '../config/load.ts';

/**
 * plugin.json: what a plugin folder (the full form of a plugin) declares about itself. The
 * single-module form declares the same as exports; SHARED-INTERFACES.md fixes the fields.
 */
export type Manifest = {
  readonly name: string;
  readonly version: string;
  readonly priority: number;
  /** Phase handler names the module exports (`access`, `headerFilter`, ...). */
  readonly phases: readonly string[];
  /** The plugin reads the client request body. */
  readonly reads?: readonly 'body'[];
  /** With `reads: ["body"]`: the body is buffered only for instances whose config sets this boolean field true. */
  readonly readsWhen?: { readonly body?: string };
  /** false: the headerFilter reads nothing of the response, so it runs inside the access crossing (one crossing per request). Absent: true. */
  readonly readsResponse?: boolean;
  /** Outbound hosts the plugin wants (absent: the operator's allowlist). */
  readonly capabilities?: { readonly http?: readonly string[] };
  readonly description?: string;
  /** Entry file of the handler, relative to the folder. */
  readonly handler: string;
};

export const MANIFEST_FILE = 'plugin.json';
export const SCHEMA_FILE = 'schema.json';
/** Where `isogate plugin build` writes the prebuilt bundle and what it was built from. */
export const BUNDLE_FILE = join('dist', 'plugin.js');
export const BUILD_RECORD_FILE = join('dist', 'build.json');

/** The JSON Schema of plugin.json (itself described field by field, as plugins' schemas must be). */
export const MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'priority', 'phases'],
  properties: {
    $schema: { type: 'string', description: 'Editor hint; ignored.' },
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'Lowercase name like "correlation-id": the name in the config and the one the module exports.' },
    version: { type: 'string', minLength: 1, description: 'Version of the plugin; the module exports the same.' },
    priority: { type: 'integer', description: 'Higher runs first in each phase; the module exports the same.' },
    description: { type: 'string', description: 'One line on what the plugin does.' },
    phases: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: [...HANDLER_NAMES] },
      description: 'The phase handlers the module exports, by name.',
    },
    reads: { type: 'array', uniqueItems: true, items: { enum: ['body'] }, description: 'What of the client request the plugin reads beyond its head: "body".' },
    readsWhen: {
      type: 'object',
      additionalProperties: false,
      description: 'With reads: the config field (a boolean) that must be true for an instance to have its routes buffer what is read; absent: every instance.',
      properties: {
        body: { type: 'string', pattern: '^[a-z][a-z0-9_]*$', description: 'Config field, e.g. "key_in_body": only instances with it true buffer the client body.' },
      },
    },
    readsResponse: {
      type: 'boolean',
      default: true,
      description:
        'false: the headerFilter reads nothing of the response (response.getStatus/getHeader/getHeaders/getSource, serviceResponse.*), only the request, ctx and config, and sets headers or the status. ' +
        'A chain whose every headerFilter plugin says false (and that has no response handler) runs its headerFilter inside the access crossing, ' +
        'one sandbox crossing per request instead of two; its operations are applied when the response headers are sent, and on an exit() response too. ' +
        'Reading the response there throws. Default true.',
    },
    capabilities: {
      type: 'object',
      additionalProperties: false,
      description: 'What the plugin needs from the host beyond the request.',
      properties: {
        http: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Hosts the plugin calls out to; the operator allowlist per tenant still applies.' },
      },
    },
    handler: { type: 'string', minLength: 1, default: 'handler.ts', description: 'Entry file of the handler module, relative to the folder.' },
  },
} as const;

const validate = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true }).compile(MANIFEST_SCHEMA);

/** Reads and validates `<dir>/plugin.json`; throws an Error naming the file and every problem. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, MANIFEST_FILE);
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message.split('\n')[0]}`);
  }
  if (!validate(value)) {
    throw new Error(`${file}: ${(validate.errors ?? []).map((e) => describeAjvError(e)).join('; ')}`);
  }
  return value as Manifest;
}
