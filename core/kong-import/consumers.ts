import { isRecord, records, usableName, type KongRecord, type Report } from './report.ts';

/** Hashes a basic-auth password the way the gateway's consumer store expects it. */
export type PasswordHasher = (password: string) => string;

/** Kong credential collections (nested in a consumer, or top level with `consumer`) -> our kind and fields. */
const CREDENTIALS = {
  keyauth_credentials: { kind: 'key-auth', fields: ['key'] },
  basicauth_credentials: { kind: 'basic-auth', fields: ['username', 'password'] },
  jwt_secrets: { kind: 'jwt', fields: ['key', 'algorithm', 'secret', 'rsa_public_key'] },
  acls: { kind: 'acl', fields: ['group'] },
} as const;
const CONSUMER_FIELDS = new Set(['id', 'username', 'custom_id', 'tags', 'created_at', 'updated_at', 'plugins', ...Object.keys(CREDENTIALS)]);
const CREDENTIAL_FIELDS_IGNORED = new Set(['id', 'tags', 'created_at', 'consumer', 'ttl']);

export type ConsumerMap = {
  readonly consumers: Record<string, unknown>[];
  /** Kong consumer username, custom_id or id -> our username. */
  readonly byRef: Map<string, string>;
};

function credential(kind: string, fields: readonly string[], c: KongRecord, at: string, report: Report, hash: PasswordHasher): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  if (typeof c.id === 'string' && usableName(c.id) === c.id) out.id = c.id;
  for (const f of fields) {
    if (c[f] === undefined || c[f] === null) continue;
    if (f === 'password') out.password_hash = hash(String(c[f]));
    else out[f] = c[f];
  }
  if (kind === 'key-auth' && typeof out.key !== 'string') {
    report.skipped(at, 'a key-auth credential without a key (Kong would generate one: give it in the file)');
    return null;
  }
  if (kind === 'basic-auth' && (typeof out.username !== 'string' || out.password_hash === undefined)) {
    report.skipped(at, 'a basic-auth credential needs username and password');
    return null;
  }
  if (kind === 'acl' && typeof out.group !== 'string') {
    report.skipped(at, 'an acl entry without a group');
    return null;
  }
  for (const key of Object.keys(c)) {
    if (!fields.includes(key as never) && !CREDENTIAL_FIELDS_IGNORED.has(key) && c[key] !== null) report.dropped(`${at}.${key}`, 'no Isogate equivalent');
  }
  if (c.ttl !== undefined && c.ttl !== null) report.dropped(`${at}.ttl`, 'credentials do not expire in Isogate');
  return out;
}

/** Kong consumers and their credentials (nested or top level) as our consumers. */
export function convertConsumers(doc: KongRecord, report: Report, hash: PasswordHasher): ConsumerMap {
  const map: ConsumerMap = { consumers: [], byRef: new Map() };
  const ours = new Map<KongRecord, { consumer: Record<string, unknown>; i: number }>();
  const seen = new Set<string>();
  records(doc.consumers, 'consumers', report).forEach((c, i) => {
    const at = `consumers[${i}]`;
    let username = typeof c.username === 'string' ? c.username : null;
    if (username === null && typeof c.custom_id === 'string') {
      username = c.custom_id;
      report.changed(at, `no username: custom_id ${JSON.stringify(c.custom_id)} is used as the username`);
    }
    if (username === null) {
      report.skipped(at, 'a consumer needs a username or a custom_id');
      return;
    }
    if (seen.has(username)) {
      report.skipped(at, `username ${username} is used twice`);
      return;
    }
    seen.add(username);
    const out: Record<string, unknown> = { username };
    if (typeof c.custom_id === 'string') out.customId = c.custom_id;
    if (Array.isArray(c.tags) && c.tags.length > 0) out.tags = c.tags;
    for (const key of Object.keys(c)) if (!CONSUMER_FIELDS.has(key) && c[key] !== null) report.dropped(`${at}.${key}`, 'no Isogate equivalent');
    ours.set(c, { consumer: out, i });
    map.consumers.push(out);
    for (const ref of [c.id, c.username, c.custom_id]) if (typeof ref === 'string') map.byRef.set(ref, username);
  });
  const add = (owner: Record<string, unknown>, kind: string, cred: Record<string, unknown>) => {
    const creds = (owner.credentials ??= {}) as Record<string, unknown[]>;
    (creds[kind] ??= []).push(cred);
  };
  for (const [kong, { consumer, i }] of ours) {
    for (const [collection, { kind, fields }] of Object.entries(CREDENTIALS)) {
      records(kong[collection], `consumers[${i}].${collection}`, report).forEach((c, j) => {
        const cred = credential(kind, fields, c, `consumers[${i}].${collection}[${j}]`, report, hash);
        if (cred !== null) add(consumer, kind, cred);
      });
    }
  }
  // Top-level credential collections name their consumer.
  for (const [collection, { kind, fields }] of Object.entries(CREDENTIALS)) {
    records(doc[collection], collection, report).forEach((c, j) => {
      const at = `${collection}[${j}]`;
      const ref = isRecord(c.consumer) ? (c.consumer.username ?? c.consumer.id) : c.consumer;
      const username = typeof ref === 'string' ? map.byRef.get(ref) : undefined;
      const owner = username === undefined ? undefined : map.consumers.find((x) => x.username === username);
      if (owner === undefined) {
        report.skipped(at, `its consumer ${JSON.stringify(ref)} is not in the file`);
        return;
      }
      const cred = credential(kind, fields, c, at, report, hash);
      if (cred !== null) add(owner, kind, cred);
    });
  }
  return map;
}
