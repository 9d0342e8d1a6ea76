import { existsSync, readFileSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument, stringify } from 'yaml';
import { BUNDLED_PLUGINS_DIR } from '../config/compile.ts';
import { validateConfig } from '../config/load.ts';
import { ConfigError } from '../errors.ts';
import { hashPassword } from '../consumers/passwords.ts';
import { convertKong, KongFormatError } from './convert.ts';

const USAGE = `usage: isogate import KONG_FILE [--tenant NAME] [-o OUT_FILE]

Converts a Kong 3.x declarative config (kong.yml, YAML or JSON) into an Isogate config:
services and their routes, consumers with key-auth, basic-auth, jwt and acl credentials,
and the plugins Isogate bundles with their config. What cannot be converted is listed on
stderr; the rest is written to OUT_FILE (default: stdout). Exit status: 0 converted
(maybe with a report), 1 the Kong file cannot be read, 2 usage.

  --tenant NAME   the tenant the Kong file becomes (default: its _workspace, else "default")
  -o, --output    write the Isogate config here (atomically) instead of stdout
`;

function schemaOf(name: string): Record<string, unknown> | null {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) return null;
  const file = join(BUNDLED_PLUGINS_DIR, name, 'schema.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : null;
}

/** `isogate import ...`: returns the exit status. */
export async function importCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { tenant: { type: 'string' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean' } } });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(USAGE);
    return 2;
  }
  const file = resolve(positionals[0]);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`${file}: cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return 1;
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    process.stderr.write(`${file}: ${doc.errors.map((e) => e.message).join('\n')}\n`);
    return 1;
  }
  let converted;
  try {
    converted = convertKong(doc.toJS(), { tenant: values.tenant, schemaOf, hashPassword });
    validateConfig(structuredClone(converted.config), values.output ?? 'the converted config');
  } catch (err) {
    if (err instanceof KongFormatError || err instanceof ConfigError) {
      process.stderr.write(`${file}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const { config, report } = converted;
  const out = `# Converted from ${positionals[0]} by isogate import.\n${stringify(config, { lineWidth: 0 })}`;
  if (values.output === undefined) process.stdout.write(out);
  else {
    const target = resolve(values.output);
    await writeFile(`${target}.tmp`, out);
    await rename(`${target}.tmp`, target);
  }
  const t = config.tenants[0] as { services: unknown[]; routes: unknown[]; plugins: unknown[]; consumers?: unknown[] };
  process.stderr.write(
    `converted: ${t.services.length} services, ${t.routes.length} routes, ${t.consumers?.length ?? 0} consumers, ${t.plugins.length} plugins` +
      (report.entries.length === 0 ? '; nothing left out\n' : `; ${report.entries.length} not carried over as they were:\n${report.format()}\n`),
  );
  return 0;
}
