// Module resolution hooks of fnhub's Node host (registered with `module.register`, Node >= 18.19
// and 20.6): scripts are materialised as `name.js` (CommonJS) or `name.mjs` (ES module), while
// their authors wrote `import './other.js'` whatever the other is, or left the extension out.
// A relative specifier that does not resolve is tried as `.mjs` (and, without an extension, as
// `.js` then `.mjs`) before the original error is reported.

const RELATIVE = /^\.\.?\//;

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!err || err.code !== 'ERR_MODULE_NOT_FOUND' || !RELATIVE.test(specifier)) throw err;
    const stem = specifier.replace(/\.js$/, '');
    const candidates = stem === specifier && !/\.[a-z]+$/.test(specifier)
      ? [specifier + '.js', specifier + '.mjs']
      : stem !== specifier ? [stem + '.mjs'] : [];
    for (const candidate of candidates) {
      try {
        return await nextResolve(candidate, context);
      } catch (_) {
        // keep trying; the first error is the one to report
      }
    }
    throw err;
  }
}
