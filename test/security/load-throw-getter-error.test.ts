// load: the module throws an Error whose name, message and stack are getters that spin.
// Regression: the host read err.message of the converted error at config load and at
// isolate creation; the getters now run only inside the isolate, under the load deadline.
import { describeLoadThrowAttack } from './load-helpers.ts';

describeLoadThrowAttack('load throw getter error', "Object.defineProperties(new Error('x'), { message: { get() { for (;;) {} } }, name: { get() { for (;;) {} } }, stack: { get() { for (;;) {} } } })", 'cpu');
