// configure throws a Proxy whose every trap spins. Were the exception to leave the
// isolate, isolated-vm would convert it on the host's thread, outside any limit: the
// runtime reads it inside the isolate (describe), under the plugin's CPU limit, and hands
// back only a capped string, so the read is stopped there and the plugin disabled.
import { describeConfigureAttack } from './configure-helpers.ts';

const PROXY = 'new Proxy({}, { get() { for (;;) {} }, getPrototypeOf() { for (;;) {} }, has() { for (;;) {} }, ownKeys() { for (;;) {} }, getOwnPropertyDescriptor() { for (;;) {} } })';

describeConfigureAttack('configure throws a proxy', `export function configure() { throw ${PROXY}; }`, 'cpu', /stopped by the watchdog while its configure ran/);
