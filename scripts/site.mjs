#!/usr/bin/env node
// Assembles the static site from what is built (scripts/build-site builds first, then runs this).
//
//   node scripts/site.mjs [DIR] [--builds wasm,wasm-threads,wasm-nosimd] [--quiet] [--no-bundle]
//                                              (default DIR build/site; builds: those built)
//
// The site is the development server's mounts (scripts/serve.mjs defaultMounts), frozen: each
// mount's files go under its URL prefix, so the page finds everything where `scripts/serve.mjs`
// serves it, whatever mounts are added later (the scan module's included). Rules:
//  - web/ (the page, its worker, views, the service worker, the manifest) is copied, its
//    scripts bundled (esbuild, minified, no source maps; see bundlePage below): the page's
//    app.js and the worker's worker.js, each one file with all it imports at start, plus a
//    bundle per module loaded on demand (the scan views, the scan jobs); --no-bundle copies
//    them as they are;
//  - a build directory (build/<preset>) gives its .js/.mjs files that its mount allows, and
//    the .wasm files one of them names (so unit_tests.wasm stays out); a file two mounts
//    allow goes only under the mount that names it (an `allow` pattern accepting any name
//    loses to one that does not);
//  - model/ gives its .safetensors file(s) only (not the training curves);
//  - .wasm and .safetensors files get content-hashed names (name.HASH.ext, cacheable for a
//    year) and the .js files naming them are rewritten to match; everything else keeps its
//    name and is revalidated;
//  - icons/ (PNG, drawn here), and index.html gets <meta name="neurolens-build" content=VERSION>
//    (which makes the page register sw.js), the manifest link and the icon;
//  - sw.js gets the list of files, the hashed ones, the app shell it precaches and each
//    build's files (SITE); VERSION hashes every other file of the site.
// The output replaces DIR at once (a rename), so a server serving DIR never sees half a site.
// Prints each part's size, raw and gzip.
//
// Also importable: `await buildSite({ out, builds, web, quiet })` (the e2e tests build a
// changed site from a changed copy of web/).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { defaultMounts } from './serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VARIANTS = ['wasm', 'wasm-threads', 'wasm-nosimd'];
const HASHED = /\.(wasm|safetensors)$/;

const sha = (data) => crypto.createHash('sha256').update(data).digest('hex');

function walk(dir, rel = '') {
  const out = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const r = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...walk(dir, r));
    else if (entry.isFile()) out.push(r);
  }
  return out.sort();
}

// The preset a mount's directory is the build of ('wasm' for build/wasm), or null.
function presetOf(dir, buildDir) {
  const rel = path.relative(buildDir, dir);
  return !rel.startsWith('..') && !path.isAbsolute(rel) && !rel.includes(path.sep) && VARIANTS.includes(rel) ? rel : null;
}

const anyName = (m) => !m.allow || (m.allow.test('any-name.js') || m.allow.test('any-name.wasm'));

// -> Map sitePath -> {source, mount, build}
function collect({ root, web, builds, buildDirs }) {
  const buildDir = path.join(root, 'build');
  const mounts = defaultMounts(root).map((m) => (m.prefix === '/' && web ? { ...m, dir: web } : m));
  const claims = new Map();  // realpath -> [{sitePath, mount}]
  const files = new Map();
  for (const mount of mounts) {
    const prefix = mount.prefix.slice(1);
    const preset = presetOf(mount.dir, buildDir);
    if (preset && buildDirs[preset]) mount.dir = buildDirs[preset];
    if (!fs.existsSync(mount.dir)) continue;
    let names;
    if (preset) {
      if (!builds.includes(preset)) continue;
      const top = fs.readdirSync(mount.dir).filter((n) => fs.statSync(path.join(mount.dir, n)).isFile());
      const scripts = top.filter((n) => /\.m?js$/.test(n) && (!mount.allow || mount.allow.test(n)));
      // Whatever a shipped script names (its .wasm, its pthread worker script).
      const text = scripts.map((n) => fs.readFileSync(path.join(mount.dir, n), 'utf8')).join('\n');
      const named = top.filter((n) => !scripts.includes(n) && (!mount.allow || mount.allow.test(n)) &&
        (text.includes(`"${n}"`) || text.includes(`'${n}'`)));
      names = [...scripts, ...named];
    } else if (mount.prefix === '/model/') {
      names = walk(mount.dir).filter((n) => n.endsWith('.safetensors'));
    } else {
      names = walk(mount.dir).filter((n) => !mount.allow || mount.allow.test(n));
    }
    for (const name of names) {
      const source = path.join(mount.dir, name);
      const real = fs.realpathSync(source);
      const entry = { sitePath: prefix + name, source, mount, build: preset ? prefix.replace(/\/$/, '') : null };
      claims.set(real, [...(claims.get(real) ?? []), entry]);
    }
  }
  for (const entries of claims.values()) {
    const narrow = entries.filter((e) => !anyName(e.mount));
    for (const e of narrow.length ? narrow : entries) files.set(e.sitePath, e);
  }
  return files;
}

// ---- the page's scripts, bundled (esbuild) ----
// Each entry point is bundled with everything it imports into one minified file at the site's
// top level: the page (app.js) and its engine worker (worker.js), separately (the worker never
// loads the page's code, nor the page the worker's). What a bundle imports only on demand
// (`import('./x.js')`: the scan views, the worker's scan jobs) is a bundle of its own beside
// them, `x-HASH.js`, fetched when first needed, so starting the page takes one script and
// starting the worker one more. Such a lazy bundle is self-contained: a module it shares with
// the bundle that loads it (lib/dom.js, lib/labels.js...) is in both, which is safe only for
// modules without state of their own; bundlePage refuses one with a top-level `let`, `var` or
// class. Not bundled: sw.js (the service worker; buildSite fills in its placeholder) and
// whatever is not a script. Every bundled source leaves the site; any other web/ script stays.
//
// `new URL('REL', import.meta.url)` (the worker, the service worker, each engine build's glue
// and .wasm, the scan module, a stylesheet) is relative to its source file; every output is
// at the site's top level, so the plugin below rewrites REL relative to that (for a template
// literal, its leading relative part: `../${build.name}/neurolens.js` in lib/ becomes
// `${build.name}/neurolens.js`). A path that leaves web/ is an error.
export const BUNDLE_ENTRIES = ['app.js', 'worker.js'];
const URL_PATTERN = /new URL\(\s*(['"`])((?:\.\.?\/)+[^'"`]*?|\.\.?)\1\s*,\s*import\.meta\.url\s*\)/g;
const STATEFUL = /^(?:export\s+)?(?:let|var|class)\s/m;
const posixRel = (from, to) => path.relative(from, to).split(path.sep).join('/');

function rebaseUrls(web) {
  return (build) => build.onLoad({ filter: /\.m?js$/ }, async (args) => {
    const text = await fs.promises.readFile(args.path, 'utf8');
    const from = path.posix.dirname(posixRel(web, args.path));
    if (from.startsWith('..')) return { contents: text, loader: 'js' };
    const contents = text.replace(URL_PATTERN, (whole, quote, rel) => {
      const cut = quote === '`' && rel.includes('${') ? rel.indexOf('${') : rel.length;
      const head = rel.slice(0, cut), tail = rel.slice(cut);
      let target = path.posix.normalize(path.posix.join(from, head));
      if (target === '..' || target.startsWith('../'))
        throw new Error(`${posixRel(web, args.path)}: ${rel} leads out of web/; a bundle cannot name it`);
      if (target === '.' || target === './') target = tail ? '' : './';
      else if (head.endsWith('/') && !target.endsWith('/')) target += '/';
      return `new URL(${quote}${target}${tail}${quote}, import.meta.url)`;
    });
    return { contents, loader: 'js' };
  });
}

// -> {files: Map sitePath -> Buffer, inputs: Set of the web/ paths bundled}
export async function bundlePage(web) {
  const files = new Map(), inputs = new Set();
  const lazyNames = new Map();  // absolute source -> its bundle's name
  // Bundles `file` (and, first, each lazy import of it): -> {name, modules: every web/ module in it or its lazy bundles}
  async function bundle(file, name, chain) {
    const lazy = [];
    const result = await esbuild.build({
      absWorkingDir: web, entryPoints: [file], bundle: true, format: 'esm', minify: true, sourcemap: false,
      legalComments: 'none', write: false, metafile: true, logLevel: 'silent', outfile: path.join(web, '.bundle', 'out.js'),
      plugins: [{ name: 'neurolens', setup(build) {
        rebaseUrls(web)(build);
        build.onResolve({ filter: /^\.\.?\//, namespace: 'file' }, async (args) => {
          if (args.kind !== 'dynamic-import') return undefined;
          const target = path.resolve(args.resolveDir, args.path);
          if (chain.includes(target)) throw new Error(`${posixRel(web, target)} is imported on demand in a cycle`);
          if (!lazyNames.has(target)) lazyNames.set(target, (await bundle(target, null, [...chain, target])).name);
          lazy.push(target);
          return { path: `./${lazyNames.get(target)}`, external: true };
        });
      } }],
    });
    const code = Buffer.from(result.outputFiles[0].contents);
    name ??= `${path.basename(file, path.extname(file))}-${sha(code).slice(0, 8)}.js`;
    if (files.has(name)) throw new Error(`two bundles named ${name}`);
    files.set(name, code);
    const own = Object.keys(result.metafile.inputs).map((i) => path.resolve(web, i));
    for (const m of own) if (!posixRel(web, m).startsWith('..')) inputs.add(posixRel(web, m));
    for (const child of lazy) {
      for (const m of modulesOf.get(child)) {
        if (own.includes(m) && STATEFUL.test(fs.readFileSync(m, 'utf8')))
          throw new Error(`${posixRel(web, m)} is in both ${name} and the bundle it loads on demand (${posixRel(web, child)}), ` +
            'and has state of its own (a top-level let, var or class): two copies would not share it');
      }
    }
    modulesOf.set(file, own);
    return { name };
  }
  const modulesOf = new Map();
  for (const entry of BUNDLE_ENTRIES) {
    const file = path.join(web, entry);
    if (fs.existsSync(file)) await bundle(file, entry, [file]);
  }
  return { files, inputs };
}

// ---- icons: a brain slice with a bright lesion, under a lens (drawn, 4x4 supersampled) ----
function crcTable() {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t;
}
const CRC = crcTable();
function crc32(buf) { let c = 0xffffffff; for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }
function chunk(type, data) {
  const head = Buffer.alloc(8); head.writeUInt32BE(data.length, 0); head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
function encodeRgba(size, rgba) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 6;
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) { raw[y * (size * 4 + 1)] = 0; rgba.copy(raw, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4); }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}
export function drawIcon(size, { maskable = false } = {}) {
  const rgba = Buffer.alloc(size * size * 4);
  const S = 4;
  const k = maskable ? 0.72 : 0.86;  // maskable: the drawing stays inside the 80% safe circle
  const over = (dst, [r, g, b], a) => { for (let i = 0; i < 3; i++) dst[i] = dst[i] * (1 - a) + [r, g, b][i] * a; dst[3] = dst[3] * (1 - a) + a; };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const acc = [0, 0, 0, 0];
      for (let sy = 0; sy < S; sy++) {
        for (let sx = 0; sx < S; sx++) {
          const u = ((x + (sx + 0.5) / S) / size) * 2 - 1, v = ((y + (sy + 0.5) / S) / size) * 2 - 1;
          const px = [0, 0, 0, 0];
          // background: rounded square (full bleed when maskable)
          const r = 0.22, q = [Math.max(Math.abs(u) - (1 - r), 0), Math.max(Math.abs(v) - (1 - r), 0)];
          if (maskable || Math.hypot(q[0], q[1]) <= r) over(px, [21, 32, 55], 1);
          const X = u / k, Y = v / k;
          // head: grey ellipse with a darker cortex band and midline
          const head = (X / 0.62) ** 2 + (Y / 0.78) ** 2;
          if (head <= 1) {
            const g = head > 0.82 ? 200 : 120 + 40 * Math.cos(X * 9) * Math.cos(Y * 7);
            over(px, [g, g, g + 8], 1);
            if (Math.abs(X) < 0.02 && Math.abs(Y) < 0.7) over(px, [60, 60, 70], 0.8);
          }
          // lesion
          if ((X - 0.22) ** 2 + (Y + 0.18) ** 2 <= 0.16 ** 2) over(px, [255, 214, 102], 1);
          // lens ring around the lesion, and its handle
          const d = Math.hypot(X - 0.22, Y + 0.18);
          if (d >= 0.3 && d <= 0.39) over(px, [92, 200, 255], 1);
          const t = ((X - 0.22) * 0.7071 + (Y + 0.18) * 0.7071);
          const n = Math.abs((X - 0.22) * 0.7071 - (Y + 0.18) * 0.7071);
          if (t > 0.38 && t < 0.9 && n < 0.07) over(px, [92, 200, 255], 1);
          for (let i = 0; i < 4; i++) acc[i] += px[i];
        }
      }
      const o = (y * size + x) * 4, a = acc[3] / (S * S);
      for (let i = 0; i < 3; i++) rgba[o + i] = a > 0 ? Math.round(acc[i] / (S * S) / a) : 0;
      rgba[o + 3] = Math.round(a * 255);
    }
  }
  return encodeRgba(size, rgba);
}

const drawn = new Map();  // the icons, drawn once per process
const ICONS = { 'icons/icon-192.png': [192, {}], 'icons/icon-512.png': [512, {}], 'icons/icon-maskable-512.png': [512, { maskable: true }] };

function hashedName(sitePath, data) {
  const ext = path.posix.extname(sitePath);
  return `${sitePath.slice(0, -ext.length)}.${sha(data).slice(0, 12)}${ext}`;
}

const kb = (n) => `${(n / 1024).toFixed(1)} kB`.padStart(11);

// buildDirs: {preset: dir} takes a build from elsewhere than build/<preset> (the e2e tests'
// NEUROLENS_E2E_WASM*_DIR).
// bundle: false ships web/'s scripts as they are (one file per module, as before bundling).
export async function buildSite({ out = path.join(ROOT, 'build/site'), builds, web, root = ROOT, buildDirs = {}, quiet = false, bundle = true } = {}) {
  const dirOf = (b) => buildDirs[b] ?? path.join(root, 'build', b);
  builds ??= VARIANTS.filter((b) => fs.existsSync(path.join(dirOf(b), 'neurolens.js')));
  for (const b of builds) {
    if (!VARIANTS.includes(b)) throw new Error(`unknown build ${b} (known: ${VARIANTS.join(', ')})`);
    if (!fs.existsSync(path.join(dirOf(b), 'neurolens.js'))) throw new Error(`build/${b} is not built (cmake --build --preset ${b})`);
  }
  if (!builds.length) throw new Error('no engine build: build one first (cmake --preset wasm && cmake --build --preset wasm)');
  const collected = collect({ root, web, builds, buildDirs });
  const content = new Map([...collected].map(([p, e]) => [p, fs.readFileSync(e.source)]));
  const buildOf = new Map([...collected].map(([p, e]) => [p, e.build]));
  for (const [p, [size, opts]] of Object.entries(ICONS)) {
    if (!drawn.has(p)) drawn.set(p, drawIcon(size, opts));
    content.set(p, drawn.get(p));
  }
  if (!content.has('index.html') || !content.has('sw.js')) throw new Error('web/ has no index.html or sw.js');

  // The page's scripts: the bundles in place of their sources.
  if (bundle) {
    const bundled = await bundlePage(web ?? path.join(root, 'web'));
    for (const p of bundled.inputs) { content.delete(p); buildOf.delete(p); }
    for (const [p, data] of bundled.files) {
      if (content.has(p) && !BUNDLE_ENTRIES.includes(p)) throw new Error(`the bundle's ${p} would replace a file of the site`);
      content.set(p, data);
    }
  }

  // Content-hashed names, and the scripts that name them rewritten.
  const hashed = [];
  for (const p of [...content.keys()].filter((q) => HASHED.test(q))) {
    const target = hashedName(p, content.get(p));
    let named = false;
    for (const [q, data] of content) {
      if (!/\.m?js$/.test(q)) continue;
      const from = path.posix.relative(path.posix.dirname(q), p), to = path.posix.relative(path.posix.dirname(q), target);
      let text = data.toString('utf8'), changed = false;
      for (const quote of ['"', "'", '`']) {
        if (text.includes(quote + from + quote)) { text = text.split(quote + from + quote).join(quote + to + quote); changed = true; }
      }
      if (changed) { content.set(q, Buffer.from(text)); named = true; }
    }
    if (!named) { if (!quiet) console.warn(`build-site: nothing names ${p}; it keeps its name`); continue; }
    content.set(target, content.get(p)); content.delete(p);
    buildOf.set(target, buildOf.get(p));
    hashed.push(target);
  }

  // The version: every file but the service worker (which carries it).
  const versionHash = crypto.createHash('sha256');
  for (const p of [...content.keys()].sort()) if (p !== 'sw.js') versionHash.update(`${p}\0${sha(content.get(p))}\n`);
  const version = versionHash.digest('hex').slice(0, 12);

  let html = content.get('index.html').toString('utf8');
  const csp = html.match(/http-equiv="Content-Security-Policy" content="([^"]+)"/)?.[1];
  if (!csp) throw new Error('index.html has no Content-Security-Policy meta tag');
  const head = [`<meta name="neurolens-build" content="${version}">`,
    '<meta name="theme-color" content="#152037">',
    '<link rel="manifest" href="manifest.webmanifest">',
    '<link rel="apple-touch-icon" href="icons/icon-192.png">'];
  html = html.replace('<link rel="icon" href="data:,">', '<link rel="icon" href="icons/icon-192.png" type="image/png">');
  html = html.replace(/(<meta http-equiv="Content-Security-Policy"[^>]*>\n)/, `$1  ${head.join('\n  ')}\n`);
  content.set('index.html', Buffer.from(html));

  const all = [...content.keys()].filter((p) => p !== 'sw.js').sort();
  const perBuild = {};
  for (const p of all) { const b = buildOf.get(p); if (b) (perBuild[b] ??= []).push(p); }
  const shell = ['./', ...all.filter((p) => !buildOf.get(p))];
  const site = { version, csp: `${csp}; frame-ancestors 'none'`, shell, builds: perBuild, files: ['', ...all], hashed };
  const sw = content.get('sw.js').toString('utf8');
  if (!sw.includes('/*@SITE@*/null')) throw new Error('web/sw.js has no /*@SITE@*/null placeholder');
  content.set('sw.js', Buffer.from(sw.replace('/*@SITE@*/null', JSON.stringify(site))));

  // Written beside DIR, then renamed into place.
  const tmp = `${out}.tmp-${process.pid}`, old = `${out}.old-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const [p, data] of content) {
    fs.mkdirSync(path.dirname(path.join(tmp, p)), { recursive: true });
    fs.writeFileSync(path.join(tmp, p), data);
  }
  if (fs.existsSync(out)) fs.renameSync(out, old);
  fs.renameSync(tmp, out);
  fs.rmSync(old, { recursive: true, force: true });

  // Sizes, by part.
  const parts = new Map();
  let raw = 0, gz = 0;
  for (const [p, data] of content) {
    const part = buildOf.get(p) ? `${buildOf.get(p)}/` : p.startsWith('model/') ? 'model/' : 'page';
    const g = quiet ? 0 : zlib.gzipSync(data, { level: 9 }).length;
    const s = parts.get(part) ?? { raw: 0, gz: 0, n: 0 };
    s.raw += data.length; s.gz += g; s.n += 1;
    parts.set(part, s);
    raw += data.length; gz += g;
  }
  if (!quiet) {
    console.log(`build-site: ${path.relative(process.cwd(), out) || out}  version ${version}  (engine builds: ${builds.join(', ')})`);
    console.log(`  ${'part'.padEnd(16)}${'files'.padStart(6)}${'raw'.padStart(11)}${'gzip'.padStart(11)}`);
    for (const [part, s] of parts) console.log(`  ${part.padEnd(16)}${String(s.n).padStart(6)}${kb(s.raw)}${kb(s.gz)}`);
    console.log(`  ${'total'.padEnd(16)}${String(content.size).padStart(6)}${kb(raw)}${kb(gz)}`);
  }
  return { out, version, files: [...content.keys()].sort(), raw, gzip: quiet ? null : gz, builds };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const opts = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--builds') opts.builds = (args[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--builds=')) opts.builds = a.slice(9).split(',').filter(Boolean);
    else if (a === '--quiet') opts.quiet = true;
    else if (a === '--no-bundle') opts.bundle = false;
    else if (a === '-h' || a === '--help') { console.log('usage: node scripts/site.mjs [DIR] [--builds LIST] [--quiet] [--no-bundle]'); process.exit(0); }
    else if (a.startsWith('-')) { console.error(`site: unknown argument ${a}`); process.exit(2); }
    else opts.out = path.resolve(a);
  }
  try {
    await buildSite(opts);
  } catch (error) {
    console.error(`build-site: ${error.message}`);
    process.exit(1);
  }
}
