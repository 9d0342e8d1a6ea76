#!/usr/bin/env -S node --no-node-snapshot
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { ConfigError } from './errors.ts';
import { Gateway, VERSION } from './gateway.ts';

const USAGE = `isogate ${VERSION}: a sandboxed multi-tenant API gateway

usage: isogate [--config FILE] [--watch] [--echo PORT]

  --config FILE   config file (YAML). Without it: the demo, examples/gateway.yaml,
                  with the built-in echo upstream on 127.0.0.1:9000
  --watch         reload when the config file changes (SIGHUP always reloads)
  --echo PORT     also start the built-in echo upstream on 127.0.0.1:PORT
  --check         validate the config and exit (0: valid, 1: invalid)
  --help          this text
`;

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    watch: { type: 'boolean', default: false },
    echo: { type: 'string' },
    check: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const demo = values.config === undefined;
const configFile = resolve(values.config ?? new URL('../examples/gateway.yaml', import.meta.url).pathname);

if (values.check) {
  const { loadConfigFile } = await import('./config/load.ts');
  const { compileConfig } = await import('./config/compile.ts');
  try {
    await compileConfig(await loadConfigFile(configFile), configFile);
    process.stdout.write(`${configFile}: ok\n`);
    process.exit(0);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}

const echoPort = values.echo !== undefined ? Number(values.echo) : demo ? 9000 : null;
const echo = echoPort === null ? null : await (await import('../examples/echo-upstream.ts')).startEchoServer(echoPort);

let gateway: Gateway;
try {
  gateway = await Gateway.start({ configFile, watch: values.watch });
} catch (err) {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `isogate failed to start: ${(err as Error).stack}\n`);
  echo?.close();
  process.exit(1);
}

if (demo) {
  const { port } = gateway.proxyAddress;
  const admin = gateway.adminAddress;
  process.stderr.write(`\nisogate demo is up. Try:\n  curl -i localhost:${port}/echo\n  curl localhost:${admin?.port ?? 8001}/metrics\n\n`);
}

process.on('SIGHUP', () => {
  void gateway.reload();
});

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    gateway.log.info({ signal }, 'stopping');
    void gateway.stop().then(() => {
      echo?.close();
      process.exit(0);
    });
  });
}
