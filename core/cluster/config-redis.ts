import type { Redis } from 'ioredis';
import type { SharedConfig } from './config-doc.ts';

// The config is one hash, `<prefix>config`: `version` (an integer, +1 per change) and `doc`
// (the shared part as JSON). Every write is one Lua script, atomic, that checks the version
// and publishes the new one on the channel `<prefix>config`.

/** Writes when the stored version is ARGV[1] (absent counts as 0); answers the new version or -1. */
const PUT_LUA = `
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'version', v + 1, 'doc', ARGV[2])
redis.call('PUBLISH', KEYS[2], v + 1)
return v + 1`;

/** Writes version ARGV[1] when the stored one is older (Redis lost it: restarted empty, or restored from an old save). */
const RESTORE_LUA = `
local v = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if v >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'doc', ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1`;

type Scripts = Redis & {
  isogatePutConfig(key: string, channel: string, expected: number, doc: string): Promise<number>;
  isogateRestoreConfig(key: string, channel: string, version: number, doc: string): Promise<number>;
};

/** The cluster config in Redis: read it, change it when nobody else did, put back a version Redis lost. */
export class RedisConfigDoc {
  readonly #redis: Scripts;
  readonly key: string;
  readonly channel: string;

  constructor(redis: Redis, prefix: string) {
    redis.defineCommand('isogatePutConfig', { numberOfKeys: 2, lua: PUT_LUA });
    redis.defineCommand('isogateRestoreConfig', { numberOfKeys: 2, lua: RESTORE_LUA });
    this.#redis = redis as Scripts;
    this.key = `${prefix}config`;
    this.channel = `${prefix}config`;
  }

  /** The stored version and document; null when Redis holds none. Rejects when Redis does not answer. */
  async get(): Promise<{ version: number; doc: string } | null> {
    const [version, doc] = await this.#redis.hmget(this.key, 'version', 'doc');
    if (version === null || doc === null) return null;
    return { version: Number(version), doc };
  }

  /** Stores `shared` as version expected + 1 if the stored version is still `expected`; the new version, or null if it was not. */
  async put(expected: number, shared: SharedConfig): Promise<number | null> {
    const v = await this.#redis.isogatePutConfig(this.key, this.channel, expected, JSON.stringify(shared));
    return v < 0 ? null : v;
  }

  /** Stores `shared` as `version` if Redis holds an older version or none; whether it did. */
  async restore(version: number, shared: SharedConfig): Promise<boolean> {
    return (await this.#redis.isogateRestoreConfig(this.key, this.channel, version, JSON.stringify(shared))) === 1;
  }
}
