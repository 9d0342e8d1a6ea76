// load: the module throws an Error with an 8 MB message. Regression: the host copied and
// read the whole message; the runtime now hands back at most 1 KB of it, and the load
// fails as "threw" with that capped text.
import { describeLoadThrowAttack } from './load-helpers.ts';

describeLoadThrowAttack('load throw huge message', "new Error('x'.repeat(8 * 1024 * 1024))", 'threw');
