import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Gives every request a correlation id: keeps the one the client sent, or makes one, and
 * passes it upstream (and back to the client when `echoDownstream` is set).
 */
type Config = { header: string; generator: 'counter' | 'random'; echoDownstream: boolean };

export const name = 'correlation-id';
export const version = '1.0.0';
export const priority = 1500;

let counter = 0;
const seed = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0');

function newId(generator: Config['generator']): string {
  if (generator === 'counter') return `${seed}-${(++counter).toString(16)}`;
  let id = '';
  for (let i = 0; i < 4; i++) id += Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, '0');
  return `${id.slice(0, 8)}-${id.slice(8, 12)}-4${id.slice(13, 16)}-a${id.slice(17, 20)}-${id.slice(20, 32)}`;
}

export function access(pdk: Pdk, config: Config): void {
  const given = pdk.request.getHeader(config.header);
  const id = typeof given === 'string' && given !== '' ? given : newId(config.generator);
  if (id !== given) pdk.serviceRequest.setHeader(config.header, id);
  if (config.echoDownstream) pdk.ctx.set('correlationId', id);
}

export function headerFilter(pdk: Pdk, config: Config): void {
  const id = pdk.ctx.get('correlationId');
  if (config.echoDownstream && typeof id === 'string') pdk.response.setHeader(config.header, id);
}
