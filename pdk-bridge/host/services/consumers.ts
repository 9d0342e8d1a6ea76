import { createPublicKey, type KeyObject } from 'node:crypto';
import { verifyPassword as scryptVerify, type ConsumerIndex, type Credential } from '../../../core/consumers/index.ts';
import { ASYNC_CAPS, OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import { LOOKUP_PHASES, PHASE_MASKS } from '../phases.ts';
import { verifyJws } from './crypto.ts';
import { argString, ServiceError, type CallContext, type Service } from './types.ts';

/**
 * The tenant's consumers and credentials for authentication plugins
 * (pdk-bridge/runtime/client-consumer.ts): Kong's kong.client.load_consumer, and the
 * lookups Kong's key-auth, basic-auth, jwt and acl plugins make in their DAO.
 *
 * What leaves for the isolate is a consumer's public record, a credential's id, kind and
 * consumer (and a jwt credential's algorithm), or a boolean: never a key-auth key the
 * plugin did not already send, a password hash, a jwt secret or public key. Passwords and
 * signatures are checked here (SECURITY.md, promise 8).
 *
 * Every lookup reads the index of the request's route (CallContext.consumers): one
 * tenant's index holds only its consumers, so no id of another tenant is ever found.
 *
 * Phases: the lookups LOOKUP_PHASES (rewrite, access, response), the credential checks
 * (verifyPassword, verifySignature) only before the upstream (see PHASE_MASKS.LOOKUP_PHASES).
 */
const CHECK_PHASES = PHASE_MASKS.BEFORE_UPSTREAM;
const FINDABLE = new Set(['key-auth', 'basic-auth', 'jwt']);
const ID_CHARS = OUTPUT_CAPS.maxAuthFieldChars;
/**
 * A well-formed scrypt hash no password matches: an unknown credential costs the same
 * scrypt as a known one, so the time of an answer does not tell whether an id exists.
 */
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function index(cc: CallContext): ConsumerIndex | undefined {
  return cc.consumers;
}

/** What a plugin sees of a credential: its id, kind and consumer; a jwt one's algorithm too (not a secret). */
function credentialJson(c: Credential): string {
  const view: Record<string, unknown> = { id: c.id, kind: c.kind, consumer: { id: c.consumerId } };
  if (c.kind === 'jwt') view.algorithm = c.fields.algorithm ?? 'HS256';
  return JSON.stringify(view);
}

function jwtCredential(cc: CallContext, id: string): Credential {
  const c = index(cc)?.credentialById(id);
  if (c === undefined || c.kind !== 'jwt') throw new ServiceError('client.verifyCredentialSignature: no jwt credential of that id');
  return c;
}

/** Public keys parsed once per credential (a credential object lives as long as its config version). */
const parsedKeys = new WeakMap<Credential, KeyObject>();

/** The key a jwt credential verifies with: its secret (HS*, base64-decoded when the plugin says so) or its public key. */
function jwtKey(c: Credential, alg: string, secretIsBase64: boolean): string | Record<string, string> | KeyObject {
  if (alg.startsWith('HS')) {
    const secret = c.fields.secret ?? '';
    return secretIsBase64 ? { kty: 'oct', k: Buffer.from(secret, 'base64').toString('base64url') } : secret;
  }
  let k = parsedKeys.get(c);
  if (k === undefined) {
    try {
      k = createPublicKey(c.fields.rsa_public_key ?? '');
    } catch {
      throw new ServiceError(`client.verifyCredentialSignature: the public key of credential ${c.id} cannot be read`);
    }
    parsedKeys.set(c, k);
  }
  return k;
}

export const consumersService: Service = {
  name: 'consumers',
  methods: {
    /** Kong's load_consumer(id, search_by_username): by id, else (byUsername) by username. */
    load: {
      phases: LOOKUP_PHASES,
      run(args, cc) {
        const key = argString(args[0], 'consumer id or username', ID_CHARS);
        const ix = index(cc);
        const c = ix?.byId(key) ?? (args[1] === true ? ix?.byUsername(key) : undefined);
        return c === undefined ? 'null' : ix!.consumerJson(c.id)!;
      },
    },
    /** The credential of `kind` whose lookup key is `key`, with its consumer, or null. */
    find: {
      phases: LOOKUP_PHASES,
      run(args, cc) {
        const kind = argString(args[0], 'credential kind', 16);
        if (!FINDABLE.has(kind)) throw new ServiceError('client.findCredential: kind must be key-auth, basic-auth or jwt');
        const key = argString(args[1], 'credential key', OUTPUT_CAPS.maxCredentialKeyChars);
        const ix = index(cc);
        const m = ix?.credential(kind as 'key-auth' | 'basic-auth' | 'jwt', key);
        if (m === undefined) return 'null';
        return `{"consumer":${ix!.consumerJson(m.consumer.id)},"credential":${credentialJson(m.credential)}}`;
      },
    },
    /** The ACL groups of a consumer (config order), or null for an unknown consumer. */
    groups: {
      phases: LOOKUP_PHASES,
      run(args, cc) {
        const id = argString(args[0], 'consumer id', ID_CHARS);
        const ix = index(cc);
        if (ix?.byId(id) === undefined) return 'null';
        return JSON.stringify(ix.groups(id));
      },
    },
    /** basic-auth: the password against the credential's scrypt hash, here; the answer is a boolean. */
    verifyPassword: {
      phases: CHECK_PHASES,
      async run(args, cc) {
        const id = argString(args[0], 'credential id', ID_CHARS);
        const password = argString(args[1], 'password', OUTPUT_CAPS.maxPasswordChars);
        const n = cc.passwords ?? { n: 0 };
        if (++n.n > ASYNC_CAPS.maxPasswordChecks) throw new ServiceError(`client.verifyPassword: more than ${ASYNC_CAPS.maxPasswordChecks} checks in one phase`);
        const ix = index(cc);
        const c = ix?.credentialById(id);
        if (ix === undefined || c === undefined || c.kind !== 'basic-auth') {
          await scryptVerify(DUMMY_HASH, password);
          return 'false';
        }
        return (await ix.verifyPassword(c, password)) ? 'true' : 'false';
      },
    },
    /**
     * jwt: a JWS signature checked with the credential's own secret or public key, and only
     * under the credential's own algorithm: a token cannot choose how the key is used (its
     * `alg: none`, or HS256 keyed by an RS credential's public key, is false).
     */
    verifySignature: {
      phases: CHECK_PHASES,
      run(args, cc) {
        const c = jwtCredential(cc, argString(args[0], 'credential id', ID_CHARS));
        const alg = argString(args[1], 'algorithm', 16);
        const input = argString(args[2], 'signing input', OUTPUT_CAPS.maxSigningInputChars);
        const signature = argString(args[3], 'signature', OUTPUT_CAPS.maxSignatureChars);
        if (alg !== (c.fields.algorithm ?? 'HS256')) return 'false';
        return verifyJws(alg, jwtKey(c, alg, args[4] === true), input, signature) ? 'true' : 'false';
      },
    },
  },
};
