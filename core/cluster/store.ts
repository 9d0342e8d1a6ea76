import { stringify } from 'yaml';
import { validateConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import { ApiError, invalid, matches, type AdminStore, type Current, type RawConfig } from '../admin-api/store.ts';
import { clusterEtag, merged, sharedOf, type SharedConfig } from './config-doc.ts';
import type { ClusterSync } from './sync.ts';

/**
 * The admin API's store on a node of a cluster: Redis is the store, the version its ETag.
 * A change is first put in service on this node (compiled and swapped, in every worker),
 * so a config that does not compile never reaches Redis; then written to Redis only if
 * nobody changed it meanwhile (the version is checked in the same Lua script that writes
 * and publishes it). If another node's change came first, a change without If-Match is
 * made again on top of it (412 with If-Match); if the write fails, this node goes back to
 * the config before.
 * Reads come from Redis; while it is unreachable, from the config this node runs, and
 * changes are refused (503).
 */
/**
 * Tries of a change without If-Match that keeps losing the race to other nodes' changes
 * (a node under a supervisor takes longer to put a change in service, so it loses more).
 * Between tries, a random pause of up to RETRY_PAUSE_MS lets the other node's run of changes end.
 */
const MAX_ATTEMPTS = 10;
const RETRY_PAUSE_MS = 30;

export class ClusterStore implements AdminStore {
  readonly #sync: ClusterSync;
  #cache: Current | null = null;

  constructor(sync: ClusterSync) {
    this.#sync = sync;
  }

  get lastGood(): Current | null {
    return this.#sync.applied.current;
  }

  async read(): Promise<Current> {
    const remote = await this.#remote().catch(() => null);
    if (remote === null) return this.#sync.applied.current;
    return remote;
  }

  /** The version Redis holds, validated (cached by version); rejects when Redis does not answer. */
  async #remote(): Promise<Current> {
    const got = await this.#sync.doc.get();
    if (got === null) return this.#sync.applied.current;
    if (this.#cache !== null && this.#cache.etag === clusterEtag(got.version)) return this.#cache;
    const raw = merged(this.#sync.local, JSON.parse(got.doc) as SharedConfig);
    let input: ConfigInput;
    try {
      input = validateConfig(structuredClone(raw), this.#sync.file);
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_STORE', `the cluster config version ${got.version} in Redis does not validate on this node`, { details: (err as ConfigError).details });
    }
    this.#cache = { text: stringify(raw, { lineWidth: 0 }), etag: clusterEtag(got.version), raw, input };
    return this.#cache;
  }

  change<T>(ifMatch: string | undefined, edit: (raw: RawConfig) => T): Promise<{ result: T; etag: string; input: ConfigInput }> {
    const sync = this.#sync;
    return sync.serial(async () => {
      const before = sync.applied;
      try {
        // Without If-Match, a change that lost the race to another node's is made again on top of it.
        for (let attempt = 1; ; attempt++) {
          const done = await this.#attempt(ifMatch, edit);
          if (done !== null) return done;
          if (ifMatch !== undefined || attempt === MAX_ATTEMPTS) throw new ApiError('ISG_ERR_ADMIN_STALE', 'another admin changed the cluster config meanwhile; read it again');
          await new Promise((r) => setTimeout(r, Math.random() * RETRY_PAUSE_MS));
        }
      } catch (err) {
        // Whatever this node put in service for the change is undone; a newer version from Redis is then taken as usual.
        if (sync.applied !== before) await sync.commitVersion(before.version, before.current.raw, before.current.input).catch(() => undefined);
        void sync.check();
        throw err;
      }
    });
  }

  /** One try: edit Redis's version, put it in service here, write it if Redis still holds that version. Null: it did not. */
  async #attempt<T>(ifMatch: string | undefined, edit: (raw: RawConfig) => T): Promise<{ result: T; etag: string; input: ConfigInput } | null> {
    const sync = this.#sync;
    const current = await this.#remote().catch((err: unknown) => {
      if (err instanceof ApiError) throw err;
      throw new ApiError('ISG_ERR_ADMIN_UNAVAILABLE', `Redis is unreachable (${(err as Error).message}): the cluster config cannot be changed now; this node keeps serving version ${sync.applied.version}`);
    });
    const version = Number(/\d+/.exec(current.etag)![0]);
    if (ifMatch !== undefined && !matches(ifMatch, current.etag)) throw new ApiError('ISG_ERR_ADMIN_STALE', undefined, { etag: current.etag });
    const raw = structuredClone(current.raw);
    raw.tenants ??= [];
    const result = edit(raw);
    let input: ConfigInput;
    try {
      input = validateConfig(structuredClone(raw), sync.file);
    } catch (err) {
      if (err instanceof ConfigError) throw invalid(err.details);
      throw err;
    }
    await sync.commitVersion(version + 1, raw, input);
    let written: number | null;
    try {
      written = await sync.doc.put(version, sharedOf(raw));
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_UNAVAILABLE', `Redis did not take the change (${(err as Error).message}); this node went back to the version before`);
    }
    return written === null ? null : { result, etag: clusterEtag(written), input };
  }
}
