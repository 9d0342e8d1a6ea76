import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Kong's correlation-id: gives every request an id, keeps the one the client sent, passes
 * it upstream in `header_name`, and back to the client when `echo_downstream` is set.
 * The ids identify, they do not authenticate: Math.random is all the isolate has.
 */
type Config = { header_name: string; generator: 'uuid' | 'uuid#counter' | 'tracker'; echo_downstream: boolean };

export const name = 'correlation-id';
export const version = '2.0.0';
export const priority = 100001; // Kong's: before every other plugin, so they all see the id

function uuid(): string {
  let h = '';
  for (let i = 0; i < 4; i++) h += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// Kong makes one uuid per worker; here one per isolate (a tenant's isolate in a worker).
const isolateUuid = uuid();
let counter = 0;

function generate(generator: Config['generator']): string {
  switch (generator) {
    case 'uuid':
      return uuid();
    case 'uuid#counter':
      return `${isolateUuid}#${++counter}`;
    default:
      // Kong's tracker joins server address, port, worker pid, connection serial, requests
      // on it and the time; the PDK has none of the first four, so: isolate id, counter, time.
      return `${isolateUuid.slice(0, 8)}-${++counter}-${(Date.now() / 1000).toFixed(3)}`;
  }
}

/**
 * All in access (Kong echoes in header_filter): a response header set there applies to the
 * upstream's response and to the answer of a later plugin that exits, as Kong's does, with
 * no ctx and no headerFilter crossing.
 */
export function access(pdk: Pdk, config: Config): void {
  const given = pdk.request.getHeader(config.header_name);
  let id: string;
  if (typeof given === 'string' && given !== '') id = given; // kept: it goes upstream as sent
  else {
    id = generate(config.generator);
    pdk.serviceRequest.setHeader(config.header_name, id);
  }
  // Kong's: log plugins find it in log.serialize() (it rides with the request's ctx)
  pdk.log.setSerializeValue('correlation_id', id);
  if (config.echo_downstream) pdk.response.setHeader(config.header_name, id);
}
