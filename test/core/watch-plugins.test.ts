import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

/**
 * --watch reloads when a plugin's own files change: its entry file, and a file esbuild
 * bundled into it (here a module the entry imports), not only the config file.
 */
const TAGGER = `import { tag } from './tag.ts';\n${pluginSource('tagger', "export function access(pdk: any) { pdk.response.setHeader('x-tag', tag); }")}`;
const tagModule = (v: string) => `export const tag = ${JSON.stringify(v)};\n`;

const yaml = (upstream: string, head = '') => `${head}
tenants:
  - name: t1
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: tagger, path: ./tagger.ts }]
`;

async function tagOf(url: string): Promise<unknown> {
  const r = await send(`${url}/x`);
  return r.headers['x-tag'];
}

describe('--watch on plugin files: one process', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(yaml(up.url), { 'tagger.ts': TAGGER, 'tag.ts': tagModule('one') }, { watch: true });
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('reloads when a file the plugin imports changes', async () => {
    expect(await tagOf(gw.url)).toBe('one');
    writeFileSync(join(dirname(gw.configFile), 'tag.ts'), tagModule('two'));
    await waitFor(async () => (await tagOf(gw.url)) === 'two', 10_000, 'the new tag');
    expect(gw.gw.snapshot.version).toBe(2);
  });

  it("reloads when the plugin's entry file changes", async () => {
    writeFileSync(join(dirname(gw.configFile), 'tagger.ts'), TAGGER.replace("pdk.response.setHeader('x-tag', tag)", "pdk.response.setHeader('x-tag', tag + '-entry')"));
    await waitFor(async () => (await tagOf(gw.url)) === 'two-entry', 10_000, 'the new entry');
  });

  it('watches a file the plugin starts importing after a reload', async () => {
    const dir = dirname(gw.configFile);
    writeFileSync(join(dir, 'extra.ts'), tagModule('x1'));
    writeFileSync(join(dir, 'tagger.ts'), `import { tag as extra } from './extra.ts';\n${TAGGER.replace("pdk.response.setHeader('x-tag', tag)", "pdk.response.setHeader('x-tag', extra)")}`);
    await waitFor(async () => (await tagOf(gw.url)) === 'x1', 10_000, 'the extra module');
    writeFileSync(join(dir, 'extra.ts'), tagModule('x2'));
    await waitFor(async () => (await tagOf(gw.url)) === 'x2', 10_000, 'the changed extra module');
  });
});

describe('--watch on plugin files: supervisor', () => {
  let up: Upstream;
  let gp: GatewayProcess;
  let dir: string;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gp = await spawnGateway(
      yaml(up.url, 'listen: { host: 127.0.0.1, port: ${PORT} }\nadmin: { host: 127.0.0.1, port: ${ADMIN_PORT} }\nworkers: 1'),
      { 'tagger.ts': TAGGER, 'tag.ts': tagModule('one') },
      ['--watch'],
      60_000,
    );
    dir = dirname((await gp.status()).config.file);
  }, 90_000);
  afterAll(async () => {
    await gp?.stop();
    await up?.close();
  });

  it('reloads every worker when a file the plugin imports changes', async () => {
    expect(await tagOf(gp.url)).toBe('one');
    writeFileSync(join(dir, 'tag.ts'), tagModule('two'));
    await waitFor(async () => (await tagOf(gp.url)) === 'two', 30_000, 'the new tag');
    await waitFor(() => gp.output().includes('"msg":"config reloaded"'), 5_000, 'the reload line');
  });
});
