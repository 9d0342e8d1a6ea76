import type { Pdk } from '../../pdk-bridge/types.ts';
import { kongError } from '../kong-error.ts';

/**
 * Kong's acl (3.x): allows or denies the authenticated consumer by its ACL groups (the
 * `acl` credentials of the config, read from the host with client.getConsumerGroups: one
 * crossing, not cached in the isolate, so a reload's groups count at once). Runs after the
 * auth plugins (priority 950). No consumer: 401; refused: 403 `You cannot consume this
 * service`; allowed: the groups go upstream in X-Consumer-Groups unless hide_groups_header.
 */
type Config = { allow?: readonly string[] | null; deny?: readonly string[] | null; hide_groups_header?: boolean };

export const name = 'acl';
export const version = '1.0.0';
export const priority = 950; // Kong's

type Compiled = { list: ReadonlySet<string>; deny: boolean; hide: boolean };
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    const deny = config.deny != null && config.deny.length > 0;
    c = { list: new Set(deny ? config.deny! : config.allow ?? []), deny, hide: config.hide_groups_header ?? false };
    compiled.set(config, c);
  }
  return c;
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const c = compile(config);
  const consumer = pdk.client.getConsumer();
  if (consumer === null) {
    // an outside identity (a credential without a consumer of the tenant) has no groups here
    if (pdk.client.getCredential() !== null) kongError(pdk, 403, 'You cannot consume this service');
    kongError(pdk, 401, 'Unauthorized');
  }
  const groups = (await pdk.client.getConsumerGroups(consumer.id)) ?? [];
  let member = false;
  for (const g of groups) {
    if (c.list.has(g)) {
      member = true;
      break;
    }
  }
  if (member === c.deny) kongError(pdk, 403, 'You cannot consume this service');
  if (!c.hide && groups.length > 0) pdk.serviceRequest.setHeader('X-Consumer-Groups', groups.join(', '));
  else pdk.serviceRequest.clearHeader('X-Consumer-Groups');
}
