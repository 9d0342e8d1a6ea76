// cpu: an async handler awaiting in an endless loop (never yields to the host)
import { describeCpuAttack, plugin } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) { for (;;) await null; }
`);

describeCpuAttack(`cpu: an async handler awaiting in an endless loop (never yields to the host)`, EVIL);
