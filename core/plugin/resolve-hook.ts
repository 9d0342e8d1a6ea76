import { registerHooks } from 'node:module';

/**
 * Loaded with `--import` by `isogate plugin test`: `isogate/...` imports of a plugin's tests
 * resolve to the isogate that runs them (through its package.json `exports`), wherever the
 * plugin folder is and whether or not it installed isogate itself. The tests then run the
 * same gateway, sandbox and limits as the command.
 */
const self = new URL('../../package.json', import.meta.url).href;

registerHooks({
  resolve(specifier, context, next) {
    if (specifier === 'isogate' || specifier.startsWith('isogate/')) return next(specifier, { ...context, parentURL: self });
    return next(specifier, context);
  },
});
