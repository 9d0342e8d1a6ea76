import type { ConfigurePdk, Pdk } from 'isogate/pdk';

/** The config, as schema.json validates it (defaults applied). */
type Config = { keys: string[]; key_names: string[]; hide_credentials: boolean };

// The same as plugin.json: the gateway refuses a plugin whose exports and plugin.json disagree.
export const name = 'api-key';
export const version = '1.0.0';
export const priority = 1250;

/** Each instance's keys as a Set, made by configure: the handlers get the same frozen config objects. */
const keySets = new WeakMap<Config, ReadonlySet<string>>();

// Kong 3's configure: once per isolate and config, with every instance's config, before any request.
export function configure(pdk: ConfigurePdk, configs: readonly Config[]): void {
  for (const c of configs) keySets.set(c, new Set(c.keys));
  pdk.log.debug(`configured ${configs.length} instance(s)`);
}

export function access(pdk: Pdk, config: Config): void {
  const keys = keySets.get(config)!;
  for (const header of config.key_names) {
    const key = pdk.request.getHeader(header);
    if (typeof key !== 'string') continue;
    // Kong's key-auth messages, so that clients written against Kong need no change.
    if (!keys.has(key)) pdk.response.exit(401, { message: 'Invalid authentication credentials' });
    if (config.hide_credentials) pdk.serviceRequest.clearHeader(header);
    // Which key it was, for the log phase: its last four characters, never the key itself.
    pdk.ctx.set('apiKey', `...${key.slice(-4)}`);
    return;
  }
  pdk.response.exit(401, { message: 'No API key found in request' }, { 'WWW-Authenticate': 'Key realm="isogate"' });
}

export function log(pdk: Pdk): void {
  const key = pdk.ctx.get('apiKey');
  if (typeof key === 'string') pdk.log.info('served', pdk.request.getPath(), pdk.response.getStatus(), key);
}
