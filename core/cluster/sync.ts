import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Redis } from 'ioredis';
import { validateConfig } from '../config/load.ts';
import type { ClusterInput, ConfigInput } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { ApiError, writeAtomic, type Committer, type Current, type RawConfig } from '../admin-api/store.ts';
import { clusterEtag, clusterFileOf, clusterFileText, merged, parseClusterFile, sharedOf, type SharedConfig } from './config-doc.ts';
import { RedisConfigDoc } from './config-redis.ts';
import { clusterMetrics } from './metrics.ts';
import { connectRedis, redactedUrl, whenReady } from './redis.ts';

/** The config a node runs: the cluster version it came from (0: not from Redis yet) and the config itself. */
export type Applied = { version: number; current: Current };

/**
 * A node's link to the cluster config in Redis. It is the node's one Redis client for
 * config (the supervisor's, in supervisor mode: the workers only ever load the cluster
 * file). It learns of a new version by pub/sub, by a poll every pollIntervalMs and at every
 * reconnect; takes it through the node's committer (compiled and swapped like a reload, in
 * every worker under a supervisor), and writes the cluster file; a version that does not
 * validate or compile here is refused, logged and reported, and the node keeps its config.
 * While Redis is unreachable the node serves what it has and says so (degraded()).
 */
export class ClusterSync {
  readonly file: string;
  readonly settings: ClusterInput;
  readonly log: Logger;
  /** The node's own part of the config, from its bootstrap file as written. */
  readonly local: RawConfig;
  readonly #redis: Redis;
  readonly #subscriber: Redis;
  readonly doc: RedisConfigDoc;
  /** isogate_cluster_* gauges, added to the node's /metrics. */
  readonly metrics = clusterMetrics({ connected: () => this.#connected, version: () => this.#applied?.version ?? 0, refused: () => this.#refused !== null });
  #applied!: Applied;
  #commit: Committer | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #connected = false;
  #since = Date.now();
  #lastError: string | null = null;
  #remoteVersion: number | null = null;
  #refused: { version: number; error: string } | null = null;
  #closed = false;

  constructor(bootstrapFile: string, settings: ClusterInput, log: Logger) {
    this.file = clusterFileOf(bootstrapFile);
    this.settings = settings;
    this.log = log;
    this.local = (parse(readFileSync(bootstrapFile, 'utf8')) ?? {}) as RawConfig;
    this.#redis = connectRedis(settings.redis, { name: 'isogate-config' });
    this.#subscriber = connectRedis(settings.redis, { subscriber: true, name: 'isogate-config-events' });
    this.doc = new RedisConfigDoc(this.#redis, settings.redis.keyPrefix);
  }

  get applied(): Applied {
    return this.#applied;
  }

  /**
   * Decides the config the node starts with and writes the cluster file: Redis's version
   * (Redis empty: seeded from the cluster file of an earlier run, else from the bootstrap
   * file); Redis unreachable within connectTimeoutMs: the cluster file of an earlier run,
   * else the bootstrap file. Resolves with the config to start on.
   */
  async prepare(): Promise<ConfigInput> {
    const cached = existsSync(this.file) ? parseClusterFile(readFileSync(this.file, 'utf8')) : null;
    // The shared part of the last run's cluster file, with this run's own settings (its ports may have changed).
    const fallback = { version: cached?.version ?? 0, raw: merged(this.local, sharedOf(cached?.raw ?? this.local)) };
    let start = fallback;
    try {
      await whenReady(this.#redis, this.settings.redis.connectTimeoutMs);
      await this.doc.restore(Math.max(1, fallback.version), sharedOf(fallback.raw));
      const remote = await this.doc.get();
      if (remote !== null) {
        this.#remoteVersion = remote.version;
        start = { version: remote.version, raw: merged(this.local, JSON.parse(remote.doc) as SharedConfig) };
      }
      this.#up();
    } catch (err) {
      this.#down(err as Error);
      this.log.warn({ redis: redactedUrl(this.settings.redis.url), version: start.version }, `Redis unreachable at start (${(err as Error).message}): starting on ${cached !== null ? 'the cluster file of the last run' : 'the bootstrap file'}; catching up once Redis answers`);
    }
    let input: ConfigInput;
    try {
      input = validateConfig(structuredClone(start.raw), this.file);
    } catch (err) {
      if (start === fallback) throw err;
      // Redis holds a version this node cannot use: it starts on what it had and reports the refusal.
      this.#refused = { version: start.version, error: (err as Error).message };
      this.log.error({ version: start.version }, `cluster config version ${start.version} refused on this node: ${(err as Error).message}`);
      start = fallback;
      input = validateConfig(structuredClone(start.raw), this.file);
    }
    const text = clusterFileText(start.version, start.raw);
    await writeAtomic(this.file, text);
    this.#applied = { version: start.version, current: { text, etag: clusterEtag(start.version), raw: start.raw, input } };
    return input;
  }

  /** From now on, new versions go in service through `commit` (the node's committer over the cluster file). */
  start(commit: Committer): void {
    this.#commit = commit;
    void this.#subscriber.subscribe(this.doc.channel).catch(() => undefined);
    this.#subscriber.on('message', () => void this.check());
    this.#redis.on('ready', () => {
      this.log.info({ redis: redactedUrl(this.settings.redis.url) }, 'Redis reachable again: checking the config version');
      void this.check();
    });
    this.#redis.on('close', () => this.#down(new Error('connection closed')));
    this.#timer = setInterval(() => void this.check(), this.settings.pollIntervalMs);
    this.#timer.unref();
    void this.check();
  }

  /** Runs `fn` after every config change before it: changes (from Redis or this node's API) go in one at a time. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** Takes the version Redis holds if it is newer; puts ours back if Redis lost it. */
  check(): Promise<void> {
    return this.serial(async () => {
      if (this.#closed || this.#commit === null) return;
      let remote: { version: number; doc: string } | null;
      try {
        remote = await this.doc.get();
        if (remote === null || remote.version < this.#applied.version) {
          // Redis came back empty or older (no persistence, an old save): it gets our version again.
          if (await this.doc.restore(Math.max(1, this.#applied.version), sharedOf(this.#applied.current.raw))) this.log.warn({ version: this.#applied.version, had: remote?.version ?? null }, 'Redis had lost the cluster config: this node wrote its version back');
          remote = await this.doc.get();
        }
      } catch (err) {
        this.#down(err as Error);
        return;
      }
      this.#up();
      if (remote === null) return;
      this.#remoteVersion = remote.version;
      if (remote.version <= this.#applied.version || this.#refused?.version === remote.version) return;
      await this.#take(remote.version, merged(this.local, JSON.parse(remote.doc) as SharedConfig));
    });
  }

  async #take(version: number, raw: RawConfig): Promise<void> {
    try {
      const input = validateConfig(structuredClone(raw), this.file);
      await this.commitVersion(version, raw, input);
      this.log.info({ version }, 'cluster config version applied');
    } catch (err) {
      const details = (err as { extra?: { details?: string[] }; details?: string[] }).extra?.details ?? (err as { details?: string[] }).details;
      const error = details !== undefined ? `${(err as Error).message}: ${details.join('; ')}` : (err as Error).message;
      this.#refused = { version, error };
      this.log.error({ version, running: this.#applied.version }, `cluster config version ${version} refused on this node, keeping version ${this.#applied.version}: ${error}`);
    }
  }

  /** Puts `raw` in service on this node as cluster version `version` (throws ApiError, the running config kept, when it cannot). */
  async commitVersion(version: number, raw: RawConfig, input: ConfigInput): Promise<Current> {
    if (this.#commit === null) throw new ApiError('ISG_ERR_ADMIN_STORE', 'the node is still starting');
    const text = clusterFileText(version, raw);
    await this.#commit({ text, input }, this.#applied.current);
    const current = { text, etag: clusterEtag(version), raw, input };
    this.#applied = { version, current };
    if (this.#refused !== null && this.#refused.version <= version) this.#refused = null;
    return current;
  }

  #up(): void {
    if (!this.#connected) this.#since = Date.now();
    this.#connected = true;
    this.#lastError = null;
  }

  #down(err: Error): void {
    if (this.#closed) return;
    if (this.#connected || this.#lastError === null) {
      this.#since = Date.now();
      if (this.#commit !== null) this.log.warn({ redis: redactedUrl(this.settings.redis.url), version: this.#applied?.version }, `Redis unreachable (${err.message}): serving config version ${this.#applied?.version ?? 0} until it is back`);
    }
    this.#connected = false;
    this.#lastError = err.message;
  }

  /** Why the node is degraded (/readyz answers 200 with it: the node serves), or null. */
  degraded(): string | null {
    if (!this.#connected) return `Redis unreachable since ${new Date(this.#since).toISOString()} (${this.#lastError ?? 'not connected'}): serving cluster config version ${this.#applied.version}, admin API changes refused`;
    if (this.#refused !== null) return `cluster config version ${this.#refused.version} was refused on this node: serving version ${this.#applied.version}`;
    return null;
  }

  /** The `cluster` object of /status. */
  status(): Record<string, unknown> {
    return {
      redis: redactedUrl(this.settings.redis.url),
      connected: this.#connected,
      since: new Date(this.#since).toISOString(),
      lastError: this.#lastError,
      version: this.#applied.version,
      redisVersion: this.#remoteVersion,
      refused: this.#refused,
      degraded: this.degraded(),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#subscriber.disconnect();
    this.#redis.disconnect();
  }
}
