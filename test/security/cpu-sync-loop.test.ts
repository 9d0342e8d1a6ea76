// cpu: a synchronous infinite loop
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { for (;;) {} }
`);

describeCpuAttack(`cpu: a synchronous infinite loop`, EVIL);
