import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { loadPluginFolder } from '../../core/plugin/folder.ts';
import { buildPluginFolder } from '../../core/plugin/build.ts';
import { EARLY_HEADER_FILTER } from '../../pdk-bridge/phases.ts';

/**
 * The full form of a plugin: a folder with plugin.json, schema.json and a handler that may
 * import npm packages from the folder's own node_modules. Loaded by real gateways, run on
 * real requests.
 */
type Files = Record<string, string>;

const MANIFEST = { name: 'tagger', version: '1.2.0', priority: 900, phases: ['access', 'headerFilter'], reads: ['body'], capabilities: { http: ['api.example.com'] } };
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  description: 'tagger config',
  properties: {
    prefix: { type: 'string', default: 'tag', description: 'Prefix of the tag.' },
    nested: { type: 'object', description: 'Nested options.', properties: { upper: { type: 'boolean', default: false, description: 'Upper-case the tag.' } }, default: {} },
  },
};
const HANDLER = `import type { Pdk } from 'isogate/pdk';
import { pad } from 'tiny-pad';
export const name = 'tagger';
export const version = '1.2.0';
export const priority = 900;
export function access(pdk: Pdk, config: { prefix: string; nested: { upper: boolean } }) {
  const tag = pad(config.prefix, 6);
  pdk.serviceRequest.setHeader('x-tag', config.nested.upper ? tag.toUpperCase() : tag);
}
export function headerFilter(pdk: Pdk) { pdk.response.setHeader('x-tagged', 'yes'); }
`;
// A real npm package layout in the folder's node_modules (esbuild resolves it as it would any installed package).
const NPM: Files = {
  'node_modules/tiny-pad/package.json': JSON.stringify({ name: 'tiny-pad', version: '1.0.0', type: 'module', exports: './index.js' }),
  'node_modules/tiny-pad/index.js': "export function pad(s, n) { return s.length >= n ? s : s + '_'.repeat(n - s.length); }\n",
};

const roots: string[] = [];
function pluginFolder(files: Files): string {
  const root = mkdtempSync(join(tmpdir(), 'isogate-folder-'));
  roots.push(root);
  const dir = join(root, 'tagger');
  const all: Files = { 'plugin.json': JSON.stringify(MANIFEST), 'schema.json': JSON.stringify(SCHEMA), 'handler.ts': HANDLER, ...NPM, ...files };
  for (const [name, text] of Object.entries(all)) {
    if (text === '') continue; // '' deletes a default file
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const yaml = (upstream: string, dir: string, config = '{}', extra = '') => `
tenants:
  - name: t1
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: tagger, path: "${dir}", config: ${config}${extra} }]
`;

async function startError(yamlText: string): Promise<string> {
  const gw = await startGateway(yamlText).catch((err: Error) => err);
  if (!(gw instanceof Error)) {
    await gw.stop();
    throw new Error('the gateway started');
  }
  return gw.message;
}

describe('plugin folders', () => {
  let up: Upstream;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
  });
  afterAll(async () => {
    await up?.close();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  });

  it('loads a folder given as path, applies schema defaults and bundles its npm import', async () => {
    const gw = await startGateway(yaml(up.url, pluginFolder({})));
    try {
      const r = await send(`${gw.url}/x`);
      expect(r.status).toBe(200);
      expect(r.json().headers['x-tag']).toBe('tag___'); // tiny-pad ran in the isolate, default prefix
      expect(r.headers['x-tagged']).toBe('yes');
    } finally {
      await gw.stop();
    }
    const gw2 = await startGateway(yaml(up.url, pluginFolder({}), '{ prefix: ab, nested: { upper: true } }'));
    try {
      expect((await send(`${gw2.url}/x`)).json().headers['x-tag']).toBe('AB____');
    } finally {
      await gw2.stop();
    }
  });

  it('reads reads and capabilities from plugin.json, and watches its files', async () => {
    const dir = pluginFolder({});
    const { info } = await loadPluginFolder(dir);
    expect(info.reads).toEqual(['body']);
    expect(info.capabilities).toEqual({ http: ['api.example.com'] });
    expect(info.inputs).toEqual(expect.arrayContaining([join(dir, 'handler.ts'), join(dir, 'plugin.json'), join(dir, 'schema.json'), join(dir, 'node_modules/tiny-pad/index.js')]));
  });

  it('refuses a folder whose plugin.json and exports disagree, naming each difference', async () => {
    const msg = await startError(yaml(up.url, pluginFolder({ 'plugin.json': JSON.stringify({ ...MANIFEST, version: '2.0.0', phases: ['access'] }) })));
    expect(msg).toContain('tenants[0].plugins[0]: plugin "tagger" could not be loaded');
    expect(msg).toContain('plugin.json and handler.ts disagree');
    expect(msg).toContain('version: plugin.json says "2.0.0", the module exports "1.2.0"');
    expect(msg).toContain('phases: plugin.json says [access], the module exports handlers [access, headerFilter]');
    const prio = await startError(yaml(up.url, pluginFolder({ 'handler.ts': HANDLER.replace('priority = 900', 'priority = 901') })));
    expect(prio).toContain('priority: plugin.json says 900, the module exports 901');
  });

  it('reads readsResponse from plugin.json (default true); refuses one the module says alone, or one without a headerFilter', async () => {
    expect((await loadPluginFolder(pluginFolder({}))).info.readsResponse).toBe(true);
    const early = pluginFolder({ 'plugin.json': JSON.stringify({ ...MANIFEST, readsResponse: false }) });
    expect((await loadPluginFolder(early)).info.readsResponse).toBe(false);
    const gw = await startGateway(yaml(up.url, early));
    try {
      expect(gw.gw.snapshot.routes[0].chainPhases & EARLY_HEADER_FILTER).toBe(EARLY_HEADER_FILTER); // an early chain
      expect((await send(`${gw.url}/x`)).headers['x-tagged']).toBe('yes');
    } finally {
      await gw.stop();
    }
    const alone = await startError(yaml(up.url, pluginFolder({ 'handler.ts': HANDLER + 'export const readsResponse = false;\n' })));
    expect(alone).toContain('readsResponse: the module exports false, plugin.json does not say readsResponse: false');
    const noFilter = await startError(yaml(up.url, pluginFolder({
      'plugin.json': JSON.stringify({ ...MANIFEST, phases: ['access'], readsResponse: false }),
      'handler.ts': HANDLER.replace(/export function headerFilter[^\n]*\n/, ''),
    })));
    expect(noFilter).toContain('readsResponse: false says what the headerFilter reads, and the plugin has none');
    const bad = await startError(yaml(up.url, pluginFolder({ 'plugin.json': JSON.stringify({ ...MANIFEST, readsResponse: 'no' }) })));
    expect(bad).toContain('readsResponse');
  });

  it('refuses a single-module plugin whose readsResponse is not a boolean, or false without a headerFilter', async () => {
    const mod = (body: string) => `export const name = 'solo';\nexport const version = '1.0.0';\nexport const priority = 1;\n${body}\n`;
    const conf = `
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: solo, path: ./solo.ts }]
`;
    const err = async (body: string) => {
      const gw = await startGateway(conf, { 'solo.ts': mod(body) }).catch((e: Error) => e);
      if (!(gw instanceof Error)) {
        await gw.stop();
        throw new Error('the gateway started');
      }
      return gw.message;
    };
    expect(await err("export const readsResponse = 'no';\nexport function headerFilter() {}")).toContain('export `readsResponse` must be true, false or absent');
    expect(await err('export const readsResponse = false;\nexport function access() {}')).toContain('export `readsResponse` = false says what the headerFilter reads');
  });

  it('refuses a schema.json with a field that has no description, naming the fields', async () => {
    const schema = structuredClone(SCHEMA) as any;
    delete schema.properties.prefix.description;
    delete schema.properties.nested.properties.upper.description;
    const msg = await startError(yaml(up.url, pluginFolder({ 'schema.json': JSON.stringify(schema) })));
    expect(msg).toContain('schema.json: every field needs a "description"');
    expect(msg).toContain('missing on "prefix", "nested.upper"');
  });

  it('refuses a bad plugin.json, a missing schema.json and a `schema` next to a folder, saying where', async () => {
    const bad = await startError(yaml(up.url, pluginFolder({ 'plugin.json': JSON.stringify({ ...MANIFEST, phases: ['acess'], colour: 'red' }) })));
    expect(bad).toMatch(/plugin\.json: .*unknown field "colour"/);
    expect(bad).toMatch(/phases\[0\]: must be one of "rewrite", "access"/);
    expect(await startError(yaml(up.url, pluginFolder({ 'schema.json': '' })))).toMatch(/schema\.json: not found/);
    expect(await startError(yaml(up.url, pluginFolder({}), '{}', ', schema: ./x.json'))).toContain('tenants[0].plugins[0].schema: a plugin folder brings its own schema.json');
    const named = await startError(yaml(up.url, pluginFolder({})).replace('name: tagger', 'name: other'));
    expect(named).toContain('is named "tagger" (plugin.json), not "other"');
  });

  it('validates the config against schema.json', async () => {
    const msg = await startError(yaml(up.url, pluginFolder({}), '{ prefix: 7 }'));
    expect(msg).toContain('tenants[0].plugins[0].config.prefix');
  });

  it('loads the prebuilt bundle while its sources are unchanged, alone when they are absent, and builds again when they change', async () => {
    const dir = pluginFolder({});
    await buildPluginFolder(dir);
    // Unchanged sources: the prebuilt bundle is what loads (its path is among the watched inputs).
    expect((await loadPluginFolder(dir)).info.inputs).toContain(join(dir, 'dist/plugin.js'));
    // A changed source: built again from it, the stale bundle is not used.
    writeFileSync(join(dir, 'handler.ts'), HANDLER.replace("'yes'", "'fresh'"));
    const gw = await startGateway(yaml(up.url, dir));
    try {
      expect((await send(`${gw.url}/x`)).headers['x-tagged']).toBe('fresh');
    } finally {
      await gw.stop();
    }
    // Only the bundle shipped (no handler, no node_modules): it loads and runs.
    await buildPluginFolder(dir);
    rmSync(join(dir, 'handler.ts'));
    rmSync(join(dir, 'node_modules'), { recursive: true });
    const gw2 = await startGateway(yaml(up.url, dir));
    try {
      const r = await send(`${gw2.url}/x`);
      expect(r.headers['x-tagged']).toBe('fresh');
      expect(r.json().headers['x-tag']).toBe('tag___');
    } finally {
      await gw2.stop();
    }
  });

  it('caches builds by content: an edit that keeps size and mtime is still built again', async () => {
    const dir = pluginFolder({});
    const handler = join(dir, 'handler.ts');
    const first = await loadPluginFolder(dir);
    expect(first.info.code).toContain('"yes"');
    const { mtime } = statSync(handler);
    writeFileSync(handler, HANDLER.replace("'yes'", "'new'"));
    utimesSync(handler, mtime, mtime);
    const second = await loadPluginFolder(dir);
    expect(second.info.code).toContain('"new"');
    expect((await loadPluginFolder(dir)).info).toEqual(second.info); // unchanged: the cached build
  });

  it("--watch reloads when the folder's schema.json changes (a new default applies)", async () => {
    const dir = pluginFolder({});
    const gw = await startGateway(yaml(up.url, dir), {}, { watch: true });
    try {
      expect((await send(`${gw.url}/x`)).json().headers['x-tag']).toBe('tag___');
      const schema = structuredClone(SCHEMA);
      schema.properties.prefix.default = 'new';
      writeFileSync(join(dir, 'schema.json'), JSON.stringify(schema));
      await waitFor(async () => (await send(`${gw.url}/x`)).json().headers['x-tag'] === 'new___', 10_000, 'the new default');
    } finally {
      await gw.stop();
    }
  });

  it('every bundled plugin is a full plugin folder that loads (plugins/README.md)', async () => {
    const root = join(import.meta.dirname, '..', '..', 'plugins');
    const folders = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders).toEqual(expect.arrayContaining(['correlation-id', 'header-transformer']));
    for (const name of folders) {
      expect(existsSync(join(root, name, 'plugin.json')), `plugins/${name} has no plugin.json (see plugins/README.md)`).toBe(true);
      const { info } = await loadPluginFolder(join(root, name)); // descriptions, agreement with the exports
      expect(info.name).toBe(name);
    }
  });

  it('runs the bundled plugins from their folders (plugin.json form)', async () => {
    const gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s }]
    plugins:
      - { name: correlation-id, config: { header_name: X-Correlation-Id, echo_downstream: true } }
      - { name: header-transformer, config: { response: { set: { x-powered-by: isogate } } } }
`);
    try {
      const r = await send(`${gw.url}/x`);
      expect(r.headers['x-correlation-id']).toBe(r.json().headers['x-correlation-id']);
      expect(r.headers['x-powered-by']).toBe('isogate');
    } finally {
      await gw.stop();
    }
  });
});
