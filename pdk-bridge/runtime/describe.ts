// In-isolate runtime: the text of a thrown value, read here in the isolate (a fault's
// message, a body parser's error), so that no plugin getter ever runs on the host.
import { $String, $apply, $slice } from './prelude.ts';

const MAX_FAULT_CHARS = 1024;

export function clip(text: string): string {
  return text.length > MAX_FAULT_CHARS ? $apply($slice, text, [0, MAX_FAULT_CHARS]) : text;
}

/** Text of a thrown value, read here in the isolate so no plugin getter ever runs on the host. */
export function describe(e: any): string {
  let text: string | undefined;
  try {
    if (e !== null && typeof e === 'object') {
      const name = e.name, message = e.message;
      const prefix = (typeof name === 'string' ? clip(name) : 'Error') + ': ';
      if (typeof message === 'string') text = prefix + clip(message);
      else if (message === undefined) text = 'thrown value: an object without a message';
      else text = prefix + clip($String(message));
    } else {
      text = 'thrown value: ' + clip(typeof e === 'string' ? e : $String(e));
    }
  } catch {
    text = 'thrown value could not be read';
  }
  return typeof text === 'string' ? clip(text) : 'thrown value could not be read';
}
