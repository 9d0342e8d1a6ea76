import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { ConfigError } from '../../core/errors.ts';
import { Gateway } from '../../core/gateway.ts';
import { createLogger } from '../../core/log.ts';
import { writeConfig } from '../helpers/gateway.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Loads and compiles `yaml`; returns the ConfigError (fails the test if there is none). */
async function configError(yaml: string, files: Record<string, string> = {}): Promise<{ file: string; error: ConfigError }> {
  const file = writeConfig(yaml, files);
  try {
    await compileConfig(await loadConfigFile(file), file);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return { file, error: err as ConfigError };
  }
  throw new Error('expected a ConfigError, the config was accepted');
}

async function compiles(yaml: string, files: Record<string, string> = {}) {
  const file = writeConfig(yaml, files);
  return compileConfig(await loadConfigFile(file), file);
}

const tenant = (body: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/r] }]
${body}`;

const plugin = (name: string, extra = '') => `export const name = '${name}';
export const version = '1.0.0';
export const priority = 10;
export function access(pdk: any) { ${extra} }
`;

describe('config validation', () => {
  it('names the file and the field path of a missing service reference', async () => {
    const { file, error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: nope, paths: [/r] }]
`);
    expect(error.file).toBe(file);
    expect(error.message).toContain(file);
    expect(error.details).toEqual(['tenants[0].routes[0].service: tenant "t1" has no service "nope"']);
  });

  it('rejects an unknown field, naming where it is', async () => {
    const { error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/r], stripPath: true, strip_path: true }]
`);
    expect(error.details).toContain('tenants[0].routes[0]: unknown field "strip_path"');
  });

  it('rejects an unknown top-level field', async () => {
    const { error } = await configError('tenants: []\nlisten_port: 80\n');
    expect(error.details).toContain('(root): unknown field "listen_port"');
  });

  it('rejects a bad service url', async () => {
    for (const url of ['ftp://127.0.0.1:21', 'http://127.0.0.1:9?x=1', 'not a url']) {
      const { error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s, url: "${url}" }]
`);
      expect(error.details.join('\n')).toMatch(/^tenants\[0\]\.services\[0\]\.url: /);
      expect(error.message).toContain(JSON.stringify(url));
    }
  });

  it('rejects a missing required field, a wrong type, a bad path and a bad method', async () => {
    const { error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s }]
    routes:
      - { name: r, service: s, paths: [api], methods: [get], stripPath: "yes" }
`);
    const text = error.details.join('\n');
    expect(text).toContain('tenants[0].services[0]: missing required field "url"');
    expect(text).toContain('tenants[0].routes[0].paths[0]: "api" does not have the expected form');
    expect(text).toContain('tenants[0].routes[0].methods[0]: "get" does not have the expected form');
    expect(text).toContain('tenants[0].routes[0].stripPath: must be boolean');
  });

  it('reports YAML syntax errors and unreadable files', async () => {
    const { file, error } = await configError('tenants: [\n  - name: {');
    expect(error.details[0].startsWith(`${file}:`)).toBe(true);
    expect(error.details[0]).toMatch(/^.+:\d+:\d+: YAML [A-Z_]+: /);
    const missing = join(ROOT, 'test', 'no-such-config.yaml');
    await expect(loadConfigFile(missing)).rejects.toThrow(`${missing}: invalid config\n  cannot read the file: ENOENT`);
  });

  it('names file:line:col of a YAML syntax error and keeps the excerpt with the caret', async () => {
    const { file, error } = await configError('listen: { host: 0.0.0.0, port: 8000\ntenants: []\n');
    expect(error.details).toHaveLength(1);
    const [head, ...excerpt] = error.details[0].split('\n');
    expect(head).toBe(`${file}:2:1: YAML BAD_INDENT: Flow map in block collection must be sufficiently indented and end with a }`);
    expect(excerpt).toEqual(['    listen: { host: 0.0.0.0, port: 8000', '    tenants: []', '    ^']);
  });

  it('rejects an unknown plugin', async () => {
    const { error } = await configError(tenant('    plugins: [{ name: no-such-plugin }]'));
    expect(error.details).toEqual(['tenants[0].plugins[0].name: no bundled plugin "no-such-plugin" (give `path` for a plugin of your own)']);
  });

  it('rejects a plugin path that does not exist, or a module whose name differs', async () => {
    const missing = await configError(tenant('    plugins: [{ name: mine, path: ./missing.ts }]'));
    expect(missing.error.details).toEqual(['tenants[0].plugins[0].path: file not found: ./missing.ts']);
    const other = await configError(tenant('    plugins: [{ name: mine, path: ./p.ts }]'), { 'p.ts': plugin('theirs') });
    expect(other.error.details[0]).toMatch(/^tenants\[0\]\.plugins\[0\]\.name: the module at \.\/p\.ts exports name "theirs", not "mine"/);
  });

  it('rejects a plugin module that does not export what a plugin must', async () => {
    const { error } = await configError(tenant('    plugins: [{ name: mine, path: ./p.ts }]'), { 'p.ts': "export const name = 'mine';\nexport const version = '1';\n" });
    expect(error.details[0]).toMatch(/^tenants\[0\]\.plugins\[0\]: plugin "mine" could not be loaded: export `priority` must be an integer/);
  });

  it('rejects plugin config that fails the plugin schema, with the path inside config', async () => {
    const { error } = await configError(tenant(`    plugins:
      - name: correlation-id
        config: { generator: sequential, extra: 1 }`));
    expect(error.details).toContain('tenants[0].plugins[0].config.generator: must be one of "uuid", "uuid#counter", "tracker"');
    expect(error.details).toContain('tenants[0].plugins[0].config: unknown field "extra"');
  });

  it('validates the config of a plugin of your own against its schema file', async () => {
    const schema = JSON.stringify({ type: 'object', required: ['limit'], properties: { limit: { type: 'integer', minimum: 1 } } });
    const files = { 'p.ts': plugin('mine'), 's.json': schema };
    const bad = await configError(tenant('    plugins: [{ name: mine, path: ./p.ts, schema: ./s.json, config: { limit: 0 } }]'), files);
    expect(bad.error.details).toEqual(['tenants[0].plugins[0].config.limit: must be >= 1']);
    const good = await compiles(tenant('    plugins: [{ name: mine, path: ./p.ts, schema: ./s.json, config: { limit: 3 } }]'), files);
    expect(good.programs.get('t1')?.instances[0].config).toEqual({ limit: 3 });
  });

  it('rejects limits above the ceilings, wherever they are set', async () => {
    const { error } = await configError(`
limits:
  defaults: { cpuMs: 300 }
  ceilings: { cpuMs: 200, memoryMb: 128 }
tenants:
  - name: t1
    limits: { cpuMs: 250 }
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins:
      - name: correlation-id
        limits: { cpuMs: 500, memoryMb: 256 }
`);
    expect(error.details).toContain('limits.defaults.cpuMs: 300 is above the ceiling 200');
    expect(error.details).toContain('tenants[0].limits.cpuMs: 250 is above the ceiling 200');
    expect(error.details).toContain('tenants[0].plugins[0].limits.cpuMs: 500 is above the ceiling 200');
    expect(error.details).toContain('tenants[0].limits.memoryMb: 256 is above the ceiling 128');
  });

  it('rejects memory below the isolate minimum', async () => {
    const { error } = await configError(tenant('    limits: { memoryMb: 4 }'));
    expect(error.details).toContain('tenants[0].limits.memoryMb: must be >= 8');
  });

  it('rejects two tenants claiming the same host and path', async () => {
    const { error } = await configError(`
tenants:
  - name: a
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, hosts: [Api.Test], paths: [/x] }]
  - name: b
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, hosts: [api.test], paths: [/x] }]
`);
    expect(error.details).toEqual(['tenants: route "b/r" and route "a/r" both claim host api.test path /x']);
  });

  it('rejects two routes without hosts on the same path, and accepts disjoint methods', async () => {
    const { error } = await configError(`
tenants:
  - name: a
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r1, service: s }, { name: r2, service: s, paths: [/] }]
`);
    expect(error.details[0]).toContain('both claim host (any host) path /');
    const ok = await compiles(`
tenants:
  - name: a
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r1, service: s, methods: [GET] }, { name: r2, service: s, methods: [POST] }]
  - name: b
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, hosts: [b.test] }]
`);
    expect(ok.routes.map((r) => r.id)).toEqual(['a/r1', 'a/r2', 'b/r']);
  });

  it('rejects duplicate names', async () => {
    const { error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }, { name: s, url: "http://127.0.0.1:8" }]
    routes: [{ name: r, service: s, paths: [/a] }, { name: r, service: s, paths: [/b] }]
  - name: t1
`);
    expect(error.details).toContain('tenants[0].services[1].name: service "s" is declared twice in tenant "t1"');
    expect(error.details).toContain('tenants[0].routes[1].name: route "r" is declared twice in tenant "t1"');
    expect(error.details).toContain('tenants[1].name: tenant "t1" is declared twice');
  });

  it('lists every problem of the file at once', async () => {
    const { error } = await configError(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: nope }]
    plugins: [{ name: no-such-plugin }, { name: correlation-id, route: nope }]
`);
    expect(error.details.length).toBe(3);
    expect(error.message.split('\n').length).toBe(4);
  });

  it('applies defaults and resolves services, base paths and plugin chains', async () => {
    const c = await compiles(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9/base/" }]
    routes: [{ name: r, service: s, hosts: [A.Test] }, { name: bare, service: s, paths: [/bare] }]
    plugins:
      - { name: header-transformer, route: r }
      - { name: correlation-id }
`);
    const [r, bare] = c.routes;
    expect(r.service).toMatchObject({ origin: 'http://127.0.0.1:9', basePath: '/base', hostHeader: '127.0.0.1:9', preserveHost: true, timeoutMs: 60000 });
    expect(r.hosts).toEqual(['a.test']);
    expect(r.paths).toEqual(['/']);
    expect(r.stripPath).toBe(false);
    const program = c.programs.get('t1')!;
    // correlation-id (priority 100001) runs before header-transformer (800) on r; bare only has correlation-id.
    const names = (chainId: number) => program.chains[chainId][2].map((i) => program.instances[i].name);
    expect(names(r.chainId)).toEqual(['correlation-id', 'header-transformer']);
    expect(names(bare.chainId)).toEqual(['correlation-id']);
    expect(c.input.listen).toEqual({ host: '0.0.0.0', port: 8000, reusePort: true });
    expect(c.input.admin).toEqual({ host: '127.0.0.1', port: 8001, tokens: [] });
  });

  it('makes Gateway.start throw the ConfigError', async () => {
    const file = writeConfig(tenant('    plugins: [{ name: no-such-plugin }]'));
    await expect(Gateway.start({ configFile: file, listen: { port: 0, host: '127.0.0.1' }, admin: false, logger: createLogger('silent') })).rejects.toThrow(
      'tenants[0].plugins[0].name: no bundled plugin',
    );
  });
});

describe('isogate --check', () => {
  function check(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolvePromise) => {
      execFile(
        process.execPath,
        ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', file, '--check'],
        { env: { ...process.env, ISOGATE_LOG_LEVEL: 'silent' }, timeout: 20_000 },
        (err, stdout, stderr) => resolvePromise({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }),
      );
    });
  }

  it('exits 1 with the message for an invalid file, 0 for a valid one', async () => {
    const bad = writeConfig(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: nope }]
`);
    const good = writeConfig(tenant(''));
    const [b, g] = await Promise.all([check(bad), check(good)]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain(bad);
    expect(b.stderr).toContain('tenants[0].routes[0].service: tenant "t1" has no service "nope"');
    expect(g.code).toBe(0);
    expect(g.stdout).toBe(`${good}: ok\n`);
  });

  it('prints esbuild\'s whole message for a plugin that does not build: file, line, column, source line, caret, what is wrong', async () => {
    const source = `${plugin('broken')}export function rewrite(pdk: any) { const a = 1 +; }\n`;
    const file = writeConfig(tenant('    plugins: [{ name: broken, path: ./broken.ts }]'), { 'broken.ts': source });
    const pluginFile = join(dirname(file), 'broken.ts');
    const r = await check(file);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`${file}: invalid config`);
    expect(lines[1]).toBe('  tenants[0].plugins[0]: plugin "broken" could not be loaded: build failed with 1 error');
    expect(r.stderr).toContain('[ERROR] Unexpected ";"');
    expect(r.stderr).toContain(`${pluginFile}:5:49:`); // esbuild counts columns from 0: the ";"
    expect(r.stderr).toContain('5 │ export function rewrite(pdk: any) { const a = 1 +; }');
    expect(lines.find((l) => l.includes('^'))?.indexOf('^')).toBe(lines.find((l) => l.includes('5 │'))!.indexOf('+;') + 1);
  });

  it('reports TypeScript type errors of a plugin as warnings (file:line:col) and still exits 0', async () => {
    const pdkTypes = join(ROOT, 'pdk-bridge', 'types.ts');
    const typo = `import type { Pdk } from ${JSON.stringify(pdkTypes)};
export const name = 'typo';
export const version = '1.0.0';
export const priority = 10;
export function access(pdk: Pdk) {
  const n: number = pdk.request.getPath();
  pdk.response.setHedaer('x-n', n);
  console.log(n);
}
`;
    const file = writeConfig(tenant('    plugins: [{ name: typo, path: ./typo.ts }, { name: correlation-id }]'), { 'typo.ts': typo });
    const pluginFile = join(dirname(file), 'typo.ts');
    const r = await check(file);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: ok\n`);
    expect(r.stderr.split('\n')).toEqual([
      'warnings:',
      `  ${pluginFile}:6:9: TS2322: Type 'string' is not assignable to type 'number'.`,
      `  ${pluginFile}:7:16: TS2551: Property 'setHedaer' does not exist on type 'PdkResponse'. Did you mean 'setHeader'?`,
      `  ${pluginFile}:8:3: TS2584: Cannot find name 'console': plugin code has no console, use pdk.log`,
      '',
    ]);
  });

  it('prints no warnings for plugins that type-check (the bundled ones) or are plain JavaScript', async () => {
    const file = writeConfig(tenant('    plugins: [{ name: js, path: ./js.js }, { name: correlation-id }, { name: header-transformer, config: {} }]'), {
      'js.js': plugin('js', 'const n = 1; n.nope();').replace('pdk: any', 'pdk'),
    });
    const r = await check(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
