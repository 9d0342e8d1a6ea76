// load: the module's top-level code throws a Proxy whose every trap spins. isolated-vm
// converts an exception that leaves the isolate on the host's thread, outside any limit:
// reading it hung --check, a gateway starting with the config, and every worker that
// reloaded it. Regression: the runtime now runs module code inside its own catch and hands
// back only a capped string, under the load deadline.
import { describeLoadThrowAttack } from './load-helpers.ts';

describeLoadThrowAttack('load throw proxy', 'new Proxy({}, { get() { for (;;) {} }, getPrototypeOf() { for (;;) {} }, has() { for (;;) {} }, ownKeys() { for (;;) {} }, getOwnPropertyDescriptor() { for (;;) {} } })', 'cpu');
