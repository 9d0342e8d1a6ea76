import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import type { Consumer, ConsumerIndex, Credential } from '../../core/consumers/index.ts';

/**
 * The host side of pdk.client.authenticate: the operation
 * ['auth', consumerId, credentialId, username, customId, tags, kind] checked against the
 * tenant's ConsumerIndex. Every field is what the runtime read from the plugin's objects,
 * inside the isolate, as capped strings; the host reads nothing else.
 */
export type Authenticated = {
  readonly consumer: Consumer | null;
  /** A credential of the index; null with `external` for one from outside (consumer null). */
  readonly credential: Credential | null;
  readonly external: { readonly id: string; readonly kind: string | null } | null;
  /** The plugin instance that authenticated (where the switch to the consumer's chain happens). */
  readonly instance: number;
  /** What later calls see: `,"c":...,"cr":...` spliced into the request snapshot. */
  readonly snapshot: string;
};

const CAP = OUTPUT_CAPS.maxAuthFieldChars;

function field(v: unknown): v is string | null {
  return v === null || (typeof v === 'string' && v.length > 0 && v.length <= CAP);
}

/** What is wrong with an auth operation, or null. */
export function checkAuth(op: readonly unknown[], index: ConsumerIndex | undefined): string | null {
  const [, id, credId, username, customId, tags, kind] = op;
  if (op.length !== 7 || !field(id) || !field(credId) || !field(username) || !field(customId) || !field(kind)) return 'auth: malformed operation';
  if (tags !== null && (!Array.isArray(tags) || tags.length > OUTPUT_CAPS.maxAuthTags || !tags.every((t) => typeof t === 'string' && t.length <= CAP))) return 'auth: malformed tags';
  if (id === null) return credId === null ? 'auth: neither consumer nor credential' : null;
  const c = index?.byId(id);
  if (c === undefined) return 'auth: unknown consumer id';
  if ((username !== null && username !== c.username) || (customId !== null && customId !== c.customId)) return `auth: consumer ${id} is not the consumer passed (username or customId differs)`;
  if (tags !== null && (tags.length !== c.tags.length || tags.some((t, i) => t !== c.tags[i]))) return `auth: consumer ${id} is not the consumer passed (tags differ)`;
  if (credId !== null) {
    const cred = index!.credentialById(credId);
    if (cred === undefined || cred.consumerId !== id) return `auth: consumer ${id} has no credential ${credId}`;
    if (kind !== null && kind !== cred.kind) return `auth: credential ${credId} is ${cred.kind}, not ${kind}`;
  }
  return null;
}

/** The authentication an operation that passed checkAuth stands for. */
export function authOf(op: readonly unknown[], index: ConsumerIndex | undefined, instance: number): Authenticated {
  const id = op[1] as string | null, credId = op[2] as string | null, kind = op[6] as string | null;
  const consumer = id === null ? null : index!.byId(id)!;
  const credential = id === null || credId === null ? null : index!.credentialById(credId)!;
  const external = id === null ? { id: credId!, kind } : null;
  const c = consumer === null ? '' : `,"c":${index!.consumerJson(consumer.id)}`;
  let cr = '';
  if (credential !== null) cr = `,"cr":${JSON.stringify({ id: credential.id, kind: credential.kind, consumer: { id: credential.consumerId } })}`;
  else if (external !== null) cr = `,"cr":${JSON.stringify({ id: external.id, kind: external.kind, consumer: null })}`;
  return { consumer, credential, external, instance, snapshot: c + cr };
}
