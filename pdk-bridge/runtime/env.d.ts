// What sandbox/runtime-build.ts defines for the runtime (esbuild `define`): the output caps
// of sandbox/limits.ts and what pdk.node says of this gateway. The runtime runs in a bare
// isolate: no Node types here (tsconfig.json of this folder).
import type { OUTPUT_CAPS } from '../../sandbox/limits.ts';

declare global {
  const CAPS: typeof OUTPUT_CAPS;
  const NODE: { readonly id: string; readonly hostname: string; readonly version: string };
}

export {};
