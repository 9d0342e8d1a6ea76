#!/usr/bin/env -S node --no-node-snapshot
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import type { Server } from 'node:http';
import { ConfigError } from './errors.ts';
import { loadConfigFile } from './config/load.ts';
import { singleProcessCommitter } from './admin-api/commit.ts';
import { createLogger } from './log.ts';
import { VERSION } from './version.ts';

// Subcommands live in their own files; this one starts (or checks) a gateway.
if (process.argv[2] === 'plugin') {
  const { pluginCommand } = await import('./plugin/cli.ts');
  process.exit(await pluginCommand(process.argv.slice(3)));
}
if (process.argv[2] === 'import') {
  const { importCommand } = await import('./kong-import/command.ts');
  process.exit(await importCommand(process.argv.slice(3)));
}

const USAGE = `isogate ${VERSION}: a sandboxed multi-tenant API gateway

usage: isogate [--config FILE] [--workers N|auto] [--watch] [--echo PORT] [--check]
       isogate plugin new|build|test ...   (isogate plugin --help)
       isogate import KONG_FILE [--tenant NAME] [-o OUT_FILE]   (isogate import --help)

  --config FILE      config file (YAML). Without it: the demo, examples/gateway.yaml,
                     with the built-in echo upstream on 127.0.0.1:9000
  --workers N|auto   worker processes behind a supervisor (overrides the config's
                     \`workers\`; auto: one per core; 0: one process, no supervisor)
  --watch            reload when the config file or a plugin's files change (SIGHUP always reloads)
  --echo PORT        also start the built-in echo upstream on 127.0.0.1:PORT
  --check            validate the config, build its plugins, run their configure and type-check the TypeScript
                     ones against the PDK types, then exit: 0 valid, 1 not. Type errors
                     are printed as warnings (file:line:col) and do not change the exit code
  --help             this text
`;

let values: { config?: string; workers?: string; watch?: boolean; echo?: string; check?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      config: { type: 'string' },
      workers: { type: 'string' },
      watch: { type: 'boolean', default: false },
      echo: { type: 'string' },
      check: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}

if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const demo = values.config === undefined;
const configFile = resolve(values.config ?? new URL('../examples/gateway.yaml', import.meta.url).pathname);

function fail(err: unknown): never {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `isogate failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}

const config = await loadConfigFile(configFile).catch(fail);

if (values.check === true) {
  const { compileConfig } = await import('./config/compile.ts');
  const compiled = await compileConfig(config, configFile).catch(fail);
  // What a worker would disable when it builds a tenant's isolate (a configure that throws or spins).
  const { checkTenantLoads } = await import('./config/load-check.ts');
  const problems = await checkTenantLoads(compiled);
  if (problems.length > 0) fail(new ConfigError(configFile, problems));
  const { typeCheckPluginsApart } = await import('./config/typecheck.ts');
  const entries = [...compiled.programs.values()].flatMap((p) => p.plugins.map((b) => b.source));
  const types = await typeCheckPluginsApart(entries);
  const warnings = [...compiled.warnings, ...('skipped' in types ? [`type checking skipped: ${types.skipped}`] : types.warnings)];
  if (warnings.length > 0) process.stderr.write(`warnings:\n  ${warnings.map((w) => w.replaceAll('\n', '\n    ')).join('\n  ')}\n`);
  process.stdout.write(`${configFile}: ok\n`);
  process.exit(0);
}

let workers: number | 'auto' = config.workers;
if (values.workers !== undefined) {
  if (values.workers !== 'auto' && !/^\d+$/.test(values.workers)) fail(new Error(`--workers must be a number or "auto", not "${values.workers}"`));
  workers = values.workers === 'auto' ? 'auto' : Number(values.workers);
}

const echoPort = values.echo !== undefined ? Number(values.echo) : demo ? 9000 : null;
let echo: Server | null = null;
if (echoPort !== null) echo = await (await import('../examples/echo-upstream.ts')).startEchoServer(echoPort).catch(fail);

const log = createLogger(config.log.level);
let stop: () => Promise<void>;
let reload: () => void;
let proxyPort = config.listen.port;

// A cluster node runs the cluster file (its bootstrap file's own settings and the shared
// config from Redis, written by the node), not the file it was given.
let runFile = configFile;
let runConfig = config;
const cluster = config.cluster === undefined ? undefined : new (await import('./cluster/sync.ts')).ClusterSync(configFile, config.cluster, log);
if (cluster !== undefined) {
  runConfig = await cluster.prepare().catch(fail);
  runFile = cluster.file;
}

if (workers === 0) {
  const { Gateway } = await import('./gateway.ts');
  const gateway = await Gateway.start({ configFile: runFile, watch: values.watch, logger: log, cluster }).catch(fail);
  if (cluster !== undefined) cluster.start(singleProcessCommitter(runFile, (input) => gateway.applyConfig(input)));
  proxyPort = gateway.proxyAddress.port;
  stop = () => gateway.stop();
  reload = () => void gateway.reload();
} else {
  const { Supervisor } = await import('./supervisor.ts');
  const supervisor = new Supervisor({ configFile: runFile, config: runConfig, workers, log, watch: values.watch, cluster });
  try {
    await supervisor.start();
  } catch (err) {
    await supervisor.stop();
    fail(err);
  }
  stop = () => supervisor.stop();
  reload = () => supervisor.reload();
}
if (cluster !== undefined) {
  const stopNode = stop;
  stop = () => stopNode().finally(() => cluster.close());
}

if (demo) {
  process.stderr.write(`\nisogate demo is up. Try:\n  curl -i localhost:${proxyPort}/echo\n  curl localhost:${config.admin.port}/metrics\n\n`);
}

process.on('SIGHUP', () => reload());

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'stopping');
    void stop().then(() => {
      echo?.close();
      process.exit(0);
    });
  });
}
