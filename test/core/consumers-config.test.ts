import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../core/config/compile.ts';
import { parseConfig } from '../../core/config/load.ts';
import { ConsumerIndex, derivedId, hashPassword, verifyPassword } from '../../core/consumers/index.ts';
import { ConfigError } from '../../core/errors.ts';

// Cheap scrypt parameters keep the tests fast; the format and the checks are the same.
const CHEAP = { N: 16, r: 1, p: 1 };
const HASH = hashPassword('open sesame', CHEAP);

/** The problems a config's consumers make (schema first, then compile), as the file's messages. */
async function problems(consumers: string, plugins = '[]'): Promise<string[]> {
  const text = `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }, { name: s2, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: ${plugins}
    consumers: ${consumers}
`;
  try {
    await compileConfig(parseConfig(text, 'gateway.yaml'), 'gateway.yaml');
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [...err.details];
  }
}

function index(consumers: unknown[]): { ix: ConsumerIndex; errors: string[] } {
  const errors: string[] = [];
  const ix = ConsumerIndex.build('t1', consumers as never, 'tenants[0]', errors);
  return { ix, errors };
}

describe('consumers in the config: validation', () => {
  it('accepts consumers with every kind of credential', async () => {
    expect(await problems(`
      - username: alice
        customId: u-1
        tags: [gold]
        credentials:
          key-auth: [{ key: alice-key }]
          basic-auth: [{ username: alice, password_hash: "${HASH}" }]
          jwt: [{ key: alice-iss, algorithm: HS256, secret: s3cret }, { key: alice-rsa, algorithm: RS256, rsa_public_key: "-----BEGIN PUBLIC KEY-----" }]
          acl: [{ group: admins }, { group: users }]`)).toEqual([]);
  });

  it('names the path of a schema error (missing username, unknown credential kind, snake_case consumer field)', async () => {
    const p = await problems(`
      - { customId: x }
      - { username: b, credentials: { oauth2: [] } }
      - { username: c, custom_id: y }`);
    expect(p.join('\n')).toMatch(/tenants\[0\]\.consumers\[0\].*username/);
    expect(p.join('\n')).toMatch(/tenants\[0\]\.consumers\[1\]\.credentials.*oauth2/);
    expect(p.join('\n')).toMatch(/tenants\[0\]\.consumers\[2\].*custom_id/);
  });

  it('refuses duplicate usernames, custom ids, ids and keys, naming both places', async () => {
    const p = await problems(`
      - { id: c1, username: alice, customId: u1, credentials: { key-auth: [{ key: k }], basic-auth: [{ username: bu, password_hash: "${HASH}" }], jwt: [{ key: iss, secret: x }] } }
      - { id: c1, username: alice, customId: u1, credentials: { key-auth: [{ key: k }], basic-auth: [{ username: bu, password_hash: "${HASH}" }], jwt: [{ key: iss, secret: x }] } }
      - { username: carol, credentials: { acl: [{ id: c1, group: g }, { group: g }] } }`);
    const text = p.join('\n');
    expect(text).toContain('tenants[0].consumers[1].id: id "c1" is already used at tenants[0].consumers[0]');
    expect(text).toContain('tenants[0].consumers[1].username: username "alice" is already taken by consumer c1');
    expect(text).toContain('tenants[0].consumers[1].customId: custom id "u1" is already taken');
    expect(text).toContain('tenants[0].consumers[1].credentials.key-auth[0].key: key-auth key is already used by consumer "alice"');
    expect(text).toContain('tenants[0].consumers[1].credentials.basic-auth[0].username: basic-auth username is already used');
    expect(text).toContain('tenants[0].consumers[1].credentials.jwt[0].key: jwt key is already used');
    expect(text).toContain('tenants[0].consumers[2].credentials.acl[0].id: id "c1" is already used at tenants[0].consumers[0]');
    expect(text).toContain('tenants[0].consumers[2].credentials.acl[1].group: consumer "carol" is already in group "g"');
  });

  it('refuses a plain password, a hash of unknown form or absurd cost, and jwt without its key material', async () => {
    const p = (await problems(`
      - { username: a, credentials: { basic-auth: [{ username: a, password_hash: hunter2 }] } }
      - { username: b, credentials: { basic-auth: [{ username: b, password_hash: "scrypt$1048577$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }] } }
      - { username: c, credentials: { jwt: [{ key: c, algorithm: HS512 }, { key: c2, algorithm: RS256, secret: x }] } }`)).join('\n');
    expect(p).toContain('tenants[0].consumers[0].credentials.basic-auth[0].password_hash: must be scrypt$N$r$p$salt$hash');
    expect(p).toContain('tenants[0].consumers[1].credentials.basic-auth[0].password_hash: N must be a power of two');
    expect(p).toContain('tenants[0].consumers[2].credentials.jwt[0].secret: algorithm HS512 needs a secret');
    expect(p).toContain('tenants[0].consumers[2].credentials.jwt[1].rsa_public_key: algorithm RS256 needs a public key');
  });

  it('a consumer-scoped plugin must name a consumer of the tenant; route and service must agree', async () => {
    const p = (await problems('[{ username: alice }]', `
      - { name: correlation-id, consumer: nobody }
      - { name: correlation-id, route: r, service: other }
      - { name: correlation-id, route: r, service: s2 }`)).join('\n');
    expect(p).toContain('tenants[0].plugins[0].consumer: tenant "t1" has no consumer with username or id "nobody"');
    expect(p).toContain('tenants[0].plugins[1].service: tenant "t1" has no service "other"');
    expect(p).toContain('tenants[0].plugins[2].service: route "r" forwards to service "s", not "s2": this instance would never run');
  });
});

describe('ConsumerIndex lookups', () => {
  const { ix, errors } = index([
    { id: 'c-alice', username: 'alice', customId: 'u-1', tags: ['gold'], credentials: {
      'key-auth': [{ id: 'k1', key: 'alice-key' }],
      'basic-auth': [{ username: 'alice-basic', password_hash: HASH }],
      jwt: [{ key: 'alice-iss', algorithm: 'HS256', secret: 'shh' }],
      acl: [{ group: 'admins' }, { group: 'users' }],
    } },
    { username: 'bob', credentials: { 'key-auth': [{ key: 'bob-key' }] } },
  ]);

  it('builds without errors', () => expect(errors).toEqual([]));

  it('finds consumers by id, username and custom id; a derived id is stable', () => {
    expect(ix.byId('c-alice')?.username).toBe('alice');
    expect(ix.byUsername('alice')?.id).toBe('c-alice');
    expect(ix.byCustomId('u-1')?.id).toBe('c-alice');
    const bob = ix.byUsername('bob')!;
    expect(bob.id).toBe(derivedId('t1', 'consumer', 'bob'));
    expect(index([{ username: 'bob' }]).ix.byUsername('bob')!.id).toBe(bob.id);
    expect(ix.find('bob')).toBe(bob);
    expect(ix.find(bob.id)).toBe(bob);
    expect(ix.byId('nobody')).toBeUndefined();
    expect(ix.byId('__proto__')).toBeUndefined();
  });

  it('finds credentials by kind and key, basic-auth by username, jwt by key; ACL groups per consumer', () => {
    expect(ix.credential('key-auth', 'alice-key')?.consumer.id).toBe('c-alice');
    expect(ix.credential('key-auth', 'alice-key')?.credential.id).toBe('k1');
    expect(ix.credential('key-auth', 'bob-key')?.consumer.username).toBe('bob');
    expect(ix.credential('key-auth', 'alice-iss')).toBeUndefined(); // a jwt key is not an API key
    expect(ix.basicAuth('alice-basic')?.consumer.id).toBe('c-alice');
    expect(ix.jwt('alice-iss')?.credential.fields.secret).toBe('shh');
    expect(ix.groups('c-alice')).toEqual(['admins', 'users']);
    expect(ix.groups(bob())).toEqual([]);
    expect(ix.credentialById('k1')?.kind).toBe('key-auth');
  });
  const bob = () => ix.byUsername('bob')!.id;

  it('the public record carries no credential', () => {
    const json = ix.consumerJson('c-alice')!;
    expect(JSON.parse(json)).toEqual({ id: 'c-alice', username: 'alice', customId: 'u-1', tags: ['gold'] });
    expect(json).not.toMatch(/alice-key|shh|scrypt/);
  });

  it('verifies basic-auth passwords', async () => {
    const cred = ix.basicAuth('alice-basic')!.credential;
    expect(await ix.verifyPassword(cred, 'open sesame')).toBe(true);
    expect(await ix.verifyPassword(cred, 'open sesame')).toBe(true); // remembered
    expect(await ix.verifyPassword(cred, 'open sesamE')).toBe(false);
    expect(await ix.verifyPassword(cred, '')).toBe(false);
    expect(await ix.verifyPassword(ix.credentialById('k1')!, 'alice-key')).toBe(false);
  });
});

describe('password hashes', () => {
  it('are salted scrypt in a self-describing string; the default cost is scrypt N=16384 r=8 p=1', async () => {
    const a = hashPassword('pw', CHEAP), b = hashPassword('pw', CHEAP);
    expect(a).toMatch(/^scrypt\$16\$1\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword(a, 'pw')).toBe(true);
    expect(await verifyPassword(b, 'pw')).toBe(true);
    expect(await verifyPassword(a, 'pw ')).toBe(false);
    const strong = hashPassword('pw');
    expect(strong.startsWith('scrypt$16384$8$1$')).toBe(true);
    expect(await verifyPassword(strong, 'pw')).toBe(true);
    expect(await verifyPassword('not a hash', 'pw')).toBe(false);
  });
});
