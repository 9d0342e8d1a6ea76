// cpu: a plugin's configure spins forever. It runs when the tenant's isolate is built, on
// the worker's event loop: it must be stopped at the plugin's CPU limit, disable only that
// plugin (the isolate is rebuilt without it) and be reported by --check.
import { describeConfigureAttack } from './configure-helpers.ts';

describeConfigureAttack('configure spins', 'export function configure() { for (;;) {} }', 'cpu', /stopped by the watchdog while its configure ran/);
