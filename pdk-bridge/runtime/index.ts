// In-isolate runtime: the bundle's entry (sandbox/runtime-build.ts). prelude.ts first, so
// that the intrinsics are captured before anything else runs, then lockdown.ts; the pdk
// (pdk.ts, mounted from its list of namespaces), the dispatcher and the loader. The
// bundle's result is the dispatcher's api.
import './prelude.ts';
import './lockdown.ts';
import './pdk.ts';
import './load.ts';

export { api } from './dispatcher.ts';
