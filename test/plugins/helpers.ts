import { Agent, request } from 'undici';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { ConfigError } from '../../core/errors.ts';
import { Gateway } from '../../core/gateway.ts';
import { createLogger } from '../../core/log.ts';
import { writeConfig, type Reply, type TestGateway } from '../helpers/gateway.ts';

/** The details of the ConfigError that `yaml` gives (fails the test if it compiles). */
export async function configErrors(yaml: string): Promise<string[]> {
  const file = writeConfig(yaml);
  try {
    await compileConfig(await loadConfigFile(file), file);
  } catch (err) {
    if (err instanceof ConfigError) return err.details as string[];
    throw err;
  }
  throw new Error('expected a ConfigError, the config was accepted');
}

/** A real gateway listening on `host` (e.g. '::' for dual stack), random ports. */
export async function startGatewayOn(host: string, yaml: string): Promise<TestGateway> {
  const configFile = writeConfig(yaml);
  const gw = await Gateway.start({
    configFile,
    listen: { host, port: 0 },
    admin: false,
    logger: createLogger(process.env.ISOGATE_TEST_LOG ?? 'silent'),
    accessLog: false,
  });
  return { gw, configFile, url: `http://127.0.0.1:${gw.proxyAddress.port}`, adminUrl: '', stop: () => gw.stop(500) };
}

const agents = new Map<string, Agent>();

/** One request from the local address `from` (any of 127.0.0.0/8, or ::1) to `url`. */
export async function sendFrom(from: string, url: string, headers: Record<string, string> = {}): Promise<Reply> {
  let agent = agents.get(from);
  if (agent === undefined) agents.set(from, (agent = new Agent({ localAddress: from, keepAliveTimeout: 1000 })));
  const r = await request(url, { headers, dispatcher: agent });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body, json: () => JSON.parse(body) };
}
