import type { Logger } from 'pino';
import { LOG_ONLY_TARGET, applyOps } from './ops.ts';
import { CONFIGURE } from './phases.ts';
import { logSinkFor } from './phase-call.ts';
import type { RuntimeRoute } from '../../core/route.ts';
import type { Fault } from '../../sandbox/outcome.ts';

type Tenant = { tenant: string; instances: RuntimeRoute['instances'] };

/**
 * The log lines of a plugin's configure, validated as any call's (only `log` operations
 * pass in configure) and written with phase "configure" and the plugin's first instance.
 */
export function applyConfigureOps(log: Logger, t: Tenant, ops: readonly unknown[]): void {
  const bad = applyOps(ops, CONFIGURE, LOG_ONLY_TARGET, logSinkFor(log, t, CONFIGURE));
  if (bad !== null) log.warn({ tenant: t.tenant, plugin: t.instances[bad.instance]?.id ?? 'unknown', phase: 'configure' }, `configure operations refused: ${bad.detail}`);
}

/**
 * A plugin disabled when its tenant's isolate was built (Kong logs a failed configure as
 * "failed to execute plugin 'name:configure'"): said once, at warn; its requests then fail
 * with the same detail.
 */
export function logPluginDisabled(log: Logger, t: Tenant, fault: Fault): void {
  const inst = t.instances[fault.instance];
  log.warn({ tenant: t.tenant, plugin: inst?.name ?? 'unknown', instance: inst?.id, reason: fault.outcome }, `plugin disabled for this config: ${fault.detail}`);
}
