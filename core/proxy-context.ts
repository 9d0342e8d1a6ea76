import type { AccessLog } from './access-log.ts';
import type { PipelineContext } from '../pdk-bridge/host/phase-call.ts';
import type { RuntimeRoute } from './route.ts';
import type { Snapshot } from './snapshot.ts';

/** What the proxy needs of the gateway: the current snapshot and the pipeline's context. */
export type ProxyContext = PipelineContext & {
  current(): Snapshot;
  /** Queues the log phase of a finished request (run after the response, in batches). */
  queueLog(route: RuntimeRoute, reqJson: string, phaseJson: string, ctx: string, chainId: number): void;
  countUnmatched(): void;
  /** null when the access log is off. */
  readonly accessLog: AccessLog | null;
};
