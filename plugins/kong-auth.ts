import type { Pdk, PdkConsumer } from '../pdk-bridge/types.ts';
import { kongError } from './kong-error.ts';

/**
 * What Kong's authentication plugins share (bundled into each, plain plugin code): setting
 * the request's consumer and the upstream headers Kong sets, and the `anonymous` fallback.
 */
type Credential = { readonly id: string; readonly kind: string };

/**
 * kong.client.authenticate, then Kong's upstream headers: X-Consumer-ID, -Custom-ID,
 * -Username, X-Credential-Identifier (`identifier`: what the plugin's Kong version sends),
 * X-Anonymous-Consumer when there is no credential. Each is cleared when absent, so a
 * client cannot send them itself.
 */
export function setConsumer(pdk: Pdk, consumer: PdkConsumer, credential: Credential | null, identifier: string | null): void {
  pdk.client.authenticate(consumer, credential);
  const sq = pdk.serviceRequest;
  sq.setHeader('X-Consumer-ID', consumer.id);
  if (consumer.customId !== null) sq.setHeader('X-Consumer-Custom-ID', consumer.customId);
  else sq.clearHeader('X-Consumer-Custom-ID');
  sq.setHeader('X-Consumer-Username', consumer.username);
  if (credential !== null && identifier !== null) sq.setHeader('X-Credential-Identifier', identifier);
  else sq.clearHeader('X-Credential-Identifier');
  if (credential === null) sq.setHeader('X-Anonymous-Consumer', 'true');
  else sq.clearHeader('X-Anonymous-Consumer');
}

/**
 * An earlier auth plugin with `anonymous` already authenticated a credential: Kong's
 * plugins then skip (a logical OR of authentication methods).
 */
export function alreadyAuthenticated(pdk: Pdk, anonymous: string | null | undefined): boolean {
  return anonymous != null && anonymous !== '' && pdk.client.getCredential() !== null;
}

/**
 * The failed authentication falls back to the `anonymous` consumer (by id, else username,
 * as Kong's load_consumer(anonymous, true)); 500 as Kong's when it does not exist.
 */
export async function authenticateAnonymous(pdk: Pdk, anonymous: string): Promise<void> {
  const consumer = await pdk.client.loadConsumer(anonymous, true);
  if (consumer === null) {
    pdk.log.error(`anonymous consumer "${anonymous}" not found`);
    kongError(pdk, 500, 'An unexpected error occurred');
  }
  setConsumer(pdk, consumer, null, null);
}
