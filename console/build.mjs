// Bundles the console into ../src/fnhub/console/static/: hashed assets, index.html, and a
// gzip and a brotli copy of every asset (the server sends those as they are, so it compresses
// nothing per request). `node build.mjs` is what the wheel's build hook runs.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'src', 'fnhub', 'console', 'static');
const assets = join(out, 'assets');
const COMPRESSIBLE = /\.(js|css|html|svg|json|map)$/;

rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src', 'main.jsx') },
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  sourcemap: false,
  target: ['chrome109', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.svg': 'file' },
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: here,
});

// the app's own entry (each page loaded on demand is an entry point of the metafile too)
const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint === 'src/main.jsx');
const script = '/assets/' + relative(assets, join(here, entry[0]));
const style = entry[1].cssBundle ? '/assets/' + relative(assets, join(here, entry[1].cssBundle)) : null;

// What a cold load fetches: index.html, the entry's CSS and JS, and the chunks it imports
// statically (the editor and the charts come later, on the pages that use them).
const outputs = result.metafile.outputs;
const eager = new Set();
const visit = (path) => {
  if (eager.has(path)) return;
  eager.add(path);
  for (const i of outputs[path].imports) if (i.kind === 'import-statement' && outputs[i.path]) visit(i.path);
};
visit(entry[0]);
if (entry[1].cssBundle) eager.add(entry[1].cssBundle);
const preloads = [...eager]
  .filter((p) => p !== entry[0] && p.endsWith('.js'))
  .map((p) => `<link rel="modulepreload" href="/assets/${relative(assets, join(here, p))}">\n`)
  .join('');

const icon = readFileSync(join(here, 'src', 'icon.svg'));
const iconName = `icon-${createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
writeFileSync(join(assets, iconName), icon);

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csp-nonce" content="__CSP_NONCE__">
<title>fnhub</title>
<link rel="icon" href="/assets/${iconName}" type="image/svg+xml">
${style ? `<link rel="stylesheet" href="${style}">\n` : ''}${preloads}<script type="module" src="${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The fnhub console needs JavaScript.</noscript>
</body>
</html>
`;
writeFileSync(join(out, 'index.html'), html);

const sizes = {};
for (const dir of [out, assets]) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    // index.html is sent as it is: the server writes a fresh CSP nonce into it per response
    if (!statSync(path).isFile() || !COMPRESSIBLE.test(name) || name === 'index.html') continue;
    const raw = readFileSync(path);
    const gz = gzipSync(raw, { level: 9 });
    const br = brotliCompressSync(raw, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
    });
    writeFileSync(path + '.gz', gz);
    writeFileSync(path + '.br', br);
    sizes[relative(out, path)] = { raw: raw.length, gzip: gz.length, brotli: br.length };
  }
}

const firstLoad = new Set(['index.html', ...[...eager].map((p) => relative(out, join(here, p)))]);
const indexSize = readFileSync(join(out, 'index.html')).length;
sizes['index.html'] = { raw: indexSize, gzip: indexSize, brotli: indexSize };
const total = (k, names) => [...names].reduce((s, n) => s + (sizes[n]?.[k] || 0), 0);
const summary = {
  first_load: [...firstLoad],
  first_load_brotli: total('brotli', firstLoad),
  first_load_gzip: total('gzip', firstLoad),
  all_brotli: total('brotli', Object.keys(sizes)),
};
writeFileSync(join(out, 'build.json'), JSON.stringify({ entry: script, style, ...summary, sizes }, null, 1) + '\n');
console.log(
  `console built: first load ${summary.first_load_brotli} B brotli / ${summary.first_load_gzip} B gzip ` +
    `(${firstLoad.size} files), all assets ${summary.all_brotli} B brotli`,
);
