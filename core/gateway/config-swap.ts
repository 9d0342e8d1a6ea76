import { compileConfig, type CompiledConfig } from '../config/compile.ts';
import type { ConfigInput } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Snapshot } from '../snapshot.ts';
import type { GatewaySandboxes } from './sandboxes.ts';

export type ReloadResult = { ok: true; version: number } | { ok: false; error: string; details?: readonly string[] };

export type ConfigSwapDeps = {
  configFile: string;
  log: Logger;
  metrics: Metrics;
  /** Builds each new config's snapshot. */
  sandboxes: Pick<GatewaySandboxes, 'build'>;
  /** A new config compiled and built, before its snapshot serves: what follows the config outside the snapshot (the host services' settings). */
  applying: (compiled: CompiledConfig) => void;
  /** The replaced snapshot's last request ended: free what no snapshot uses. */
  retired: () => void;
  /** The new snapshot serves (--watch follows its files). */
  swapped: () => void;
};

/**
 * The gateway's running config snapshot and its replacement: a new config is compiled
 * and built into a snapshot, which replaces the running one atomically; requests in
 * flight finish on the old one, retired once they have. A config that does not load or
 * compile is reported and never replaces the running one. Swaps run one at a time, in order.
 */
export class ConfigSwap {
  readonly #deps: ConfigSwapDeps;
  #current: Snapshot;
  #reloading: Promise<ReloadResult> | null = null;
  #lastError: string | null = null;

  constructor(deps: ConfigSwapDeps, first: Snapshot) {
    this.#deps = deps;
    this.#current = first;
  }

  /** The snapshot new requests start on. */
  get current(): Snapshot {
    return this.#current;
  }

  /** Why the last swap was refused, or null once one succeeds (/status). */
  get lastError(): string | null {
    return this.#lastError;
  }

  /** Loads, compiles and swaps in the config `load` gives; `log: false` puts its log lines at debug. */
  swap(load: () => Promise<ConfigInput>, options: { log?: boolean } = {}): Promise<ReloadResult> {
    const { configFile, log, metrics, sandboxes } = this.#deps;
    // A worker's supervisor reports the reload once for all its workers: theirs go to debug.
    const level = options.log === false ? 'debug' : undefined;
    const run = async (): Promise<ReloadResult> => {
      try {
        const input = await load();
        const compiled = await compileConfig(input, configFile);
        for (const w of compiled.warnings) log[level ?? 'warn'](w);
        const next = sandboxes.build(compiled);
        this.#deps.applying(compiled);
        const prev = this.#current;
        this.#current = next;
        prev.retire(() => this.#deps.retired());
        this.#lastError = null;
        metrics.configReloads.labels('ok').inc();
        log[level ?? 'info']({ version: next.version, routes: next.routes.length }, 'config reloaded');
        this.#deps.swapped();
        return { ok: true, version: next.version };
      } catch (err) {
        const error = err instanceof ConfigError ? err.message : `reload failed: ${(err as Error).message}`;
        this.#lastError = error;
        metrics.configReloads.labels('error').inc();
        log[level ?? 'error']({ version: this.#current.version }, `config reload rejected, keeping version ${this.#current.version}: ${error}`);
        return { ok: false, error, details: err instanceof ConfigError ? err.details : undefined };
      }
    };
    // Swaps run one at a time, in order.
    const p = (this.#reloading ?? Promise.resolve()).then(run, run);
    this.#reloading = p;
    return p;
  }
}
