// In-isolate runtime: builtins we do not offer to plugins (SECURITY.md explains
// each). Removed from this context's global object when the bundle is evaluated (after
// prelude.ts captured what it needs), before any
// plugin code runs; no other realm exists to recover them from.
// - WebAssembly: its memory is not counted in the isolate heap limit, and compile
//   callbacks run after the call that started them.
// - SharedArrayBuffer, Atomics: no use without threads, and a building block for timers
//   precise enough for side channels; Atomics.wait would block the gateway's thread.
// - FinalizationRegistry: its callbacks run outside any call, so outside any limit.
import './prelude.ts'; // captures the intrinsics first

for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry']) {
  delete (globalThis as Record<string, unknown>)[name];
}

export {};
