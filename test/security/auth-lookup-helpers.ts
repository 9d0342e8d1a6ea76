/**
 * Setup of the consumer lookup attacks (client.loadConsumer, findCredential,
 * getConsumerGroups, verifyPassword, verifyCredentialSignature): tenant `evil` runs the
 * attack plugin on /evil and has one consumer of its own; tenant `good`, a neighbour with
 * consumers and credentials of every kind, must stay out of evil's reach.
 */
import { generateKeyPairSync } from 'node:crypto';
import { hashPassword } from '../../core/consumers/passwords.ts';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, startGateway, startUpstream, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** mallory's RS256 jwt credential (j-mallory-rs, key mallory-iss): the key pair, the public half in the config. */
export const MALLORY_RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
export const MALLORY_PEM = MALLORY_RSA.publicKey.export({ type: 'spki', format: 'pem' }).toString();

export type LookupLab = { gw: TestGateway; up: Upstream; lines: LogLine[]; stop(): Promise<void> };

/** The attack plugin: `handlers` is its module body after the metadata. */
export function lookupPlugin(handlers: string): string {
  return pluginSource('evil', handlers, 1000);
}

export async function startLookupLab(evil: string, cpuMs = 500): Promise<LookupLab> {
  const up = await startUpstream(echoHandler);
  const captured = captureLogger('debug');
  // The default cost: the same scrypt as the host's stand-in for an unknown credential.
  const evilHash = hashPassword('evil-pass');
  const goodHash = hashPassword('good-pass');
  const gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: evil
    limits: { cpuMs: ${cpuMs} }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: evil, service: s, paths: [/evil] }]
    consumers:
      - id: c-mallory
        username: mallory
        credentials:
          key-auth: [{ id: k-mallory, key: mallory-key }]
          basic-auth: [{ id: b-mallory, username: mallory, password_hash: "${evilHash}" }]
          acl: [{ group: evil-group }]
          jwt:
            - { id: j-mallory-rs, key: mallory-iss, algorithm: RS256, rsa_public_key: ${JSON.stringify(MALLORY_PEM)} }
            - { id: j-mallory-hs, key: mallory-hs-iss, algorithm: HS256, secret: mallory-hs-secret }
    plugins:
      - { name: evil, path: ./evil.ts, limits: { cpuMs: ${cpuMs} } }
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: good, service: s, paths: [/good] }]
    consumers:
      - id: c-victim
        username: victim
        customId: v-1
        credentials:
          key-auth: [{ id: k-victim, key: victim-key }]
          basic-auth: [{ id: b-victim, username: victim, password_hash: "${goodHash}" }]
          jwt: [{ id: j-victim, key: victim-iss, algorithm: HS256, secret: victim-jwt-secret }]
          acl: [{ group: admins }]
`, { 'evil.ts': evil }, { logger: captured.logger });
  return {
    gw,
    up,
    lines: captured.lines,
    async stop() {
      await gw.stop();
      await up.close();
    },
  };
}
