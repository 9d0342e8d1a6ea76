// In-isolate runtime, part 5: builtins we do not offer to plugins (SECURITY.md explains
// each). Removed from this context's global object after the runtime captured what it
// needs and before any plugin code runs; no other realm exists to recover them from.
// - WebAssembly: its memory is not counted in the isolate heap limit, and compile
//   callbacks run after the call that started them.
// - SharedArrayBuffer, Atomics: no use without threads, and a building block for timers
//   precise enough for side channels; Atomics.wait would block the gateway's thread.
// - FinalizationRegistry: its callbacks run outside any call, so outside any limit.
for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry']) {
  delete globalThis[name];
}
