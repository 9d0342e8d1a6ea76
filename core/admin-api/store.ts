import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { validateConfig } from '../config/load.ts';
import type { ConfigInput } from '../config/types.ts';
import { ConfigError, type ErrorCode } from '../errors.ts';

/** An answer other than success, raised anywhere in the API and sent as `{"error":{code,message,...}}`. */
export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly extra: Record<string, unknown>;
  constructor(code: ErrorCode, message?: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.extra = extra;
  }
}

/** The config as the file has it (no defaults filled in): what a change edits and writes back. */
export type RawConfig = { tenants?: Record<string, unknown>[]; [key: string]: unknown };

/** One read of the file: its text, version (ETag), the raw data and the validated config. */
export type Current = { text: string; etag: string; raw: RawConfig; input: ConfigInput };

/**
 * Puts a new config in service: `text` is what the file will hold, `input` the validated
 * config. Resolves once it serves; throws ApiError (the file and the running config
 * unchanged) when it cannot.
 */
export type Committer = (next: { text: string; input: ConfigInput }, prev: Current) => Promise<void>;

/**
 * Where the admin API reads and changes the config: the file on one node (ConfigStore), or
 * Redis for a cluster (core/cluster/sync.ts).
 */
export interface AdminStore {
  /** The last version that validated (null before the first read). */
  readonly lastGood: Current | null;
  /** The config as it is now. Throws ApiError(ISG_ERR_ADMIN_STORE) when it cannot be used. */
  read(): Promise<Current>;
  /** Runs `edit` on a copy of the raw config, then validates, commits and stores it; `ifMatch` must name the current version. */
  change<T>(ifMatch: string | undefined, edit: (raw: RawConfig) => T): Promise<{ result: T; etag: string; input: ConfigInput }>;
}

export function etagOf(text: string): string {
  return `"${createHash('sha256').update(text).digest('hex').slice(0, 20)}"`;
}

/**
 * The config file as the admin API's store (one node): every read parses the file, so the
 * API never serves something other than what a restart would load; every change is made on
 * a copy, validated with the file's schema, committed (compiled and swapped in by the
 * committer) and written back atomically. Changes run one at a time.
 */
export class ConfigStore implements AdminStore {
  readonly file: string;
  #commit: Committer;
  #queue: Promise<unknown> = Promise.resolve();
  #cache: Current | null = null;

  /** The last version of the file that validated (null before the first read). */
  get lastGood(): Current | null {
    return this.#cache;
  }

  constructor(file: string, commit: Committer) {
    this.file = file;
    this.#commit = commit;
  }

  /** The file as it is now. Throws ApiError(ISG_ERR_ADMIN_STORE) when it cannot be used. */
  async read(): Promise<Current> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_STORE', `the config file cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (this.#cache !== null && this.#cache.text === text) return this.#cache;
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new ApiError('ISG_ERR_ADMIN_STORE', 'the config file is not valid YAML (it was edited by hand?): fix it, then retry');
    const raw = (doc.toJS() ?? {}) as RawConfig;
    let input: ConfigInput;
    try {
      input = validateConfig(structuredClone(raw), this.file);
    } catch (err) {
      throw new ApiError('ISG_ERR_ADMIN_STORE', 'the config file does not validate (it was edited by hand?): fix it, then retry', { details: (err as ConfigError).details });
    }
    this.#cache = { text, etag: etagOf(text), raw, input };
    return this.#cache;
  }

  /**
   * Runs `edit` on a copy of the raw config, then validates, commits and writes it. `ifMatch`
   * (the request's If-Match) must name the current version. Resolves with what `edit`
   * returned, the new version and the new config.
   */
  change<T>(ifMatch: string | undefined, edit: (raw: RawConfig) => T): Promise<{ result: T; etag: string; input: ConfigInput }> {
    const run = async () => {
      const current = await this.read();
      if (ifMatch !== undefined && !matches(ifMatch, current.etag)) throw new ApiError('ISG_ERR_ADMIN_STALE', undefined, { etag: current.etag });
      const raw = structuredClone(current.raw);
      raw.tenants ??= [];
      const result = edit(raw);
      let input: ConfigInput;
      try {
        input = validateConfig(structuredClone(raw), this.file);
      } catch (err) {
        if (err instanceof ConfigError) throw invalid(err.details);
        throw err;
      }
      const text = stringify(raw, { lineWidth: 0 });
      await this.#commit({ text, input }, current);
      return { result, etag: etagOf(text), input };
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}

/** If-Match: `*` or a list of entity tags (weak ones compared by their opaque part). */
export function matches(header: string, etag: string): boolean {
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

/** The ApiError for a refused config: 409 when two routes claim the same request, else 400. Details are the file's messages. */
export function invalid(details: readonly string[]): ApiError {
  const conflict = details.some((d) => / both claim host /.test(d) || / is declared twice/.test(d) || / is already (taken|used)/.test(d));
  const code = conflict ? 'ISG_ERR_ADMIN_CONFLICT' : 'ISG_ERR_ADMIN_INVALID';
  return new ApiError(code, details[0] ?? undefined, { details });
}

/** Writes `text` to `file` so that a crash leaves the old or the new file, never half of one: a temp file in the same folder, fsync, rename. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const mode = await stat(file).then((s) => s.mode & 0o777, () => 0o644);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename itself is made durable by syncing the folder (where the OS allows opening one).
  const dir = await open(dirname(file), 'r').catch(() => null);
  if (dir !== null) await dir.sync().catch(() => undefined).finally(() => dir.close());
}
