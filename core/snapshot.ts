import type { CompiledConfig } from './config/compile.ts';
import type { RuntimeRoute } from './route.ts';
import type { PrefixRouter } from './router/router.ts';
import type { TenantHosts } from './router/tenant-hosts.ts';
import type { TenantStage } from './route.ts';
import type { TenantSandbox } from '../sandbox/tenant-sandbox.ts';

export type UnhealthyInstance = { tenant: string; instance: string; state: string };

/**
 * One immutable runtime view of the config: the router and its routes. A reload builds a
 * new snapshot and swaps it in; requests hold the snapshot they started on (retain/release)
 * so they finish on it, and the snapshot frees what the next one did not keep once its
 * last request is done.
 */
export class Snapshot {
  readonly version: number;
  readonly loadedAt = new Date();
  readonly file: string;
  readonly compiled: CompiledConfig;
  readonly router: PrefixRouter<RuntimeRoute>;
  readonly routes: readonly RuntimeRoute[];
  readonly sandboxes: ReadonlyMap<string, TenantSandbox>;
  /** For a request no route matches as received: the rewrite stage of its host's tenant (null: no tenant has one). */
  readonly hosts: TenantHosts<TenantStage> | null;
  #inflight = 0;
  #retired: (() => void) | null = null;

  constructor(version: number, file: string, compiled: CompiledConfig, router: PrefixRouter<RuntimeRoute>, routes: readonly RuntimeRoute[], sandboxes: ReadonlyMap<string, TenantSandbox>, hosts: TenantHosts<TenantStage> | null = null) {
    this.version = version;
    this.file = file;
    this.compiled = compiled;
    this.router = router;
    this.routes = routes;
    this.sandboxes = sandboxes;
    this.hosts = hosts;
  }

  get inflight(): number {
    return this.#inflight;
  }

  retain(): void {
    this.#inflight++;
  }

  release(): void {
    if (--this.#inflight === 0 && this.#retired !== null) {
      const done = this.#retired;
      this.#retired = null;
      done();
    }
  }

  /** The config file and the files of its plugins (entries and what esbuild bundled into them). */
  sourceFiles(): string[] {
    const files = new Set([this.file]);
    for (const program of this.compiled.programs.values()) {
      for (const p of program.plugins) for (const f of p.inputs) files.add(f);
    }
    return [...files];
  }

  /** Plugin instances that are not healthy (breaker open or half-open, or quarantined). */
  unhealthyInstances(): UnhealthyInstance[] {
    const out: UnhealthyInstance[] = [];
    for (const sb of this.sandboxes.values()) {
      for (const u of sb.gate.unhealthy()) out.push({ tenant: sb.tenant, instance: sb.program.instances[u.instance].id, state: u.state });
    }
    return out;
  }

  /** Called when a newer snapshot replaced this one: `cleanup` runs after its last request. */
  retire(cleanup: () => void): void {
    if (this.#inflight === 0) cleanup();
    else this.#retired = cleanup;
  }
}
