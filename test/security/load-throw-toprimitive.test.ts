// load: the module throws a plain object whose toString, valueOf and Symbol.toPrimitive
// spin (a host turning the value into a string would run them). Regression: the value is
// described only inside the isolate, without converting it: the load fails as "threw".
import { describeLoadThrowAttack } from './load-helpers.ts';

describeLoadThrowAttack('load throw toprimitive', '{ toString() { for (;;) {} }, valueOf() { for (;;) {} }, [Symbol.toPrimitive]() { for (;;) {} } }', 'threw');
