import { CONFIG_SCHEMA } from '../config/schema.ts';
import { VERSION } from '../version.ts';
import type { ApiRoute } from './router.ts';

const tenantItem = CONFIG_SCHEMA.properties.tenants.items;
const { services: _s, routes: _r, plugins: _p, consumers: _c, ...tenantOwn } = tenantItem.properties;
const consumerItem = tenantItem.properties.consumers.items;
const { credentials: _cr, ...consumerOwn } = consumerItem.properties;
const credentialKinds = consumerItem.properties.credentials.properties;
const owner = { consumer: { type: 'object', readOnly: true, properties: { id: { type: 'string' } }, description: 'The consumer this credential belongs to.' } };
/** A credential as written (Kong's fields) and as shown (with its consumer). */
const credential = (schema: { items: { properties: Record<string, unknown>; required: readonly string[] } }, write: Record<string, unknown> = {}, hide: string[] = []) => ({
  type: 'object',
  properties: { ...Object.fromEntries(Object.entries(schema.items.properties).filter(([k]) => !hide.includes(k))), ...write, ...owner },
});

/** Entity schemas: the config file's own (core/config/schema.ts), so the document and the validation cannot drift. */
const SCHEMAS = {
  Tenant: { ...tenantItem, properties: tenantOwn },
  TenantWithChildren: tenantItem,
  Service: tenantItem.properties.services.items,
  Route: tenantItem.properties.routes.items,
  Plugin: tenantItem.properties.plugins.items,
  Consumer: { ...consumerItem, properties: consumerOwn },
  KeyAuth: credential(credentialKinds['key-auth'], { key: { type: 'string', description: 'The API key; a random one when none is given.' } }),
  BasicAuth: credential(credentialKinds['basic-auth'], { password: { type: 'string', writeOnly: true, description: 'The password: stored as an scrypt hash, never shown.' } }, ['password_hash']),
  Jwt: credential(credentialKinds.jwt),
  Acl: credential(credentialKinds.acl),
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', description: 'Stable code (README: error codes), e.g. ISG_ERR_ADMIN_INVALID.' },
          message: { type: 'string', description: 'What was wrong; for a refused change, the first field path and what it expected.' },
          details: { type: 'array', items: { type: 'string' }, description: 'Every problem, as the config file would report it (`tenants[0].routes[1].paths[0]: ...`).' },
          etag: { type: 'string', description: 'On 412: the current version.' },
        },
      },
    },
  },
};

function entityOf(path: string): { ref: string; created: string } {
  if (path.includes('/services')) return { ref: 'Service', created: 'Service' };
  if (path.includes('/routes')) return { ref: 'Route', created: 'Route' };
  if (path.includes('/plugins')) return { ref: 'Plugin', created: 'Plugin' };
  if (path.includes('/key-auth')) return { ref: 'KeyAuth', created: 'KeyAuth' };
  if (path.includes('/basic-auth')) return { ref: 'BasicAuth', created: 'BasicAuth' };
  if (path.includes('/jwt')) return { ref: 'Jwt', created: 'Jwt' };
  if (path.includes('/acls')) return { ref: 'Acl', created: 'Acl' };
  if (path.includes('/consumers')) return { ref: 'Consumer', created: 'Consumer' };
  return { ref: 'Tenant', created: 'TenantWithChildren' };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ content: { 'application/json': { schema } } });
const err = (description: string) => ({ description, ...json(ref('Error')) });

/** The OpenAPI 3.1 document of the admin API, written from the router's table. */
export function openApiDocument(routes: readonly ApiRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const { ref: entity, created } = entityOf(r.path);
    const isList = r.method === 'GET' && !r.path.endsWith('}');
    const params: unknown[] = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (isList) {
      params.push({ name: 'size', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, description: 'Entities per page (Kong: size).' });
      params.push({ name: 'offset', in: 'query', schema: { type: 'string' }, description: 'The `offset` of the previous page.' });
    }
    if (r.method !== 'GET') params.push({ name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'The ETag the change is based on; a stale one answers 412.' });
    const responses: Record<string, unknown> = {
      400: err('Invalid body or change (details: the field paths)'),
      401: err('No or bad bearer token'),
      403: err('The token may not do this (or no token is configured: read-only)'),
      404: err('No such tenant or entity'),
    };
    if (r.method === 'GET') {
      responses[200] = isList
        ? { description: 'A page', ...json({ type: 'object', required: ['data', 'next'], properties: { data: { type: 'array', items: ref(entity) }, next: { type: ['string', 'null'] }, offset: { type: 'string' } } }) }
        : { description: 'The entity', ...json(ref(entity)) };
    } else {
      responses[r.method === 'POST' && !r.path.endsWith('/reload') ? 201 : r.method === 'DELETE' ? 204 : 200] = r.method === 'DELETE' ? { description: 'Deleted' } : { description: 'The entity as stored', ...json(ref(entity)) };
      responses[409] = err('Conflict: a name in use, or a host and path another route claims');
      responses[412] = err('If-Match is stale');
      responses[500] = err('The workers or the file refused the change; nothing changed');
    }
    const op: Record<string, unknown> = { summary: r.summary, parameters: params, responses, security: [{ bearer: [] }] };
    if ((r.method === 'POST' && !r.path.endsWith('/reload')) || r.method === 'PUT' || r.method === 'PATCH') {
      op.requestBody = { required: true, ...json(r.method === 'PATCH' ? { type: 'object', description: 'JSON merge patch (RFC 7386): null deletes a field' } : ref(r.method === 'POST' ? created : entity)) };
    }
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Isogate admin API', version: VERSION },
    paths,
    components: { schemas: SCHEMAS, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'admin.tokens in the config holds the sha256 of each token' } } },
  };
}
