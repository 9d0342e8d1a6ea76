/**
 * Base64 and base64url decoding for the bundled auth plugins, as plain plugin code (the
 * isolate has no atob or TextDecoder, and a PDK crossing per decode would cost more than
 * the decode). Both alphabets, padding optional; invalid input or invalid UTF-8 is null.
 */
const VALUES = new Int16Array(128).fill(-1);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charCodeAt(i)] = i;
VALUES[43] = VALUES[45] = 62; // + -
VALUES[47] = VALUES[95] = 63; // / _
const HEX = Array.from({ length: 256 }, (_, i) => '%' + (i < 16 ? '0' : '') + i.toString(16));

/** The bytes of `text` as a %xx string (what decodeURIComponent reads as UTF-8), or null. */
function percentBytes(text: string): string | null {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61) end--; // '='
  if (text.length - end > 2 || end % 4 === 1) return null;
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? VALUES[c] : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += HEX[(acc >> bits) & 255];
    }
  }
  return out;
}

/** UTF-8 text of base64 or base64url `text`, or null. */
export function decodeBase64(text: string): string | null {
  const p = percentBytes(text);
  if (p === null) return null;
  try {
    return decodeURIComponent(p);
  } catch {
    return null;
  }
}
