// cpu: a returned thenable whose then getter loops (read by the dispatcher's thenOf())
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { return { get then() { for (;;) {} } }; }
`);

describeCpuAttack(`cpu: a returned thenable whose then getter loops (read by the dispatcher's thenOf())`, EVIL);
