import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MANIFEST_SCHEMA } from './manifest.ts';

/**
 * `isogate plugin new <name>`: a plugin folder that builds, loads and passes its own test
 * as written, so an author starts from something green and changes it.
 */
export async function scaffoldPlugin(name: string, parent: string): Promise<string> {
  if (!new RegExp(MANIFEST_SCHEMA.properties.name.pattern).test(name)) throw new Error(`"${name}": a plugin name is lowercase letters, digits and dashes, like "add-header"`);
  const dir = resolve(parent, name);
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files(name))) await writeFile(join(dir, file), text);
  return dir;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

function files(name: string): Record<string, string> {
  return {
    'plugin.json': json({ name, version: '0.1.0', priority: 1000, description: 'Sets a header on the request sent upstream.', phases: ['access'] }),
    'schema.json': json({
      type: 'object',
      additionalProperties: false,
      description: `${name}: its config.`,
      properties: {
        header: { type: 'string', default: 'x-hello', pattern: '^[A-Za-z0-9-]+$', description: 'Header set on the request sent upstream.' },
        value: { type: 'string', default: 'world', description: 'Its value.' },
      },
    }),
    'handler.ts': `import type { Pdk } from 'isogate/pdk';

/** The config, as schema.json validates it (defaults applied). */
type Config = { header: string; value: string };

// The same as plugin.json: the gateway refuses a plugin whose exports and plugin.json disagree.
export const name = ${JSON.stringify(name)};
export const version = '0.1.0';
export const priority = 1000;

export function access(pdk: Pdk, config: Config): void {
  pdk.serviceRequest.setHeader(config.header, config.value);
}
`,
    'handler.test.ts': `import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testPlugin } from 'isogate/testing';

// Each test starts a real gateway on 127.0.0.1 and runs the plugin in the real sandbox.
test('sets the header on the request sent upstream', async () => {
  const r = await testPlugin({
    plugin: import.meta.dirname,
    config: { header: 'x-greeting', value: 'hello' },
    request: { path: '/orders?page=2' },
    upstream: { status: 200, body: { ok: true } },
  });
  assert.equal(r.client.status, 200);
  assert.deepEqual(r.client.json(), { ok: true });
  assert.equal(r.upstream?.path, '/orders?page=2');
  assert.equal(r.upstream?.headers['x-greeting'], 'hello');
});

test('applies the schema defaults', async () => {
  const r = await testPlugin({ plugin: import.meta.dirname });
  assert.equal(r.upstream?.headers['x-hello'], 'world');
});
`,
    'package.json': json({
      name,
      private: true,
      type: 'module',
      scripts: { build: 'isogate plugin build .', test: 'isogate plugin test .' },
    }),
    '.gitignore': 'node_modules/\ndist/\n',
  };
}
