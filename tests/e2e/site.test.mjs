// The static site (scripts/build-site) on a host that sets no headers at all: Debian's Python
// `http.server`, the honest stand-in for nginx without configuration, GitHub Pages, a USB stick.
// The site is assembled here (scripts/site.mjs, what scripts/build-site runs after building)
// from build/wasm, build/wasm-threads and build/wasm-nosimd, into a directory of this run.
//  - the page's CSP meta tag alone blocks a script and a connection to another origin;
//  - first visit: not cross-origin isolated, SIMD engine on one thread, and the page says a
//    reload will fix it; after one reload the service worker's headers make the page isolated
//    and the threaded engine runs;
//  - offline (browser context offline, and the server stopped): a reload still shows the page,
//    starts the engine from the cache and classifies an image;
//  - a new build deployed to the same place is detected: the update prompt appears, and its
//    Reload button brings the new version;
//  - the manifest is valid (name, icons that exist, start URL, file handlers) and Chromium
//    reports no installability errors;
//  - nothing is requested from another origin;
//  - the page's scripts are bundled (scripts/site.mjs): the first visit fetches the page's
//    bundle, the worker's and the engine's glue (a handful of scripts, none of web/lib or
//    web/views), nothing of the scan module, and the model and the .wasm are asked for while
//    the engine's glue is still arriving, not one after the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT, launchBrowser, launchPersistentContext, openPage, foreignRequests, screenshot, chooseFiles, settledCards } from './helpers/harness.mjs';
import { encodePng, syntheticSlice } from './helpers/png.mjs';
import { buildSite, VARIANTS } from '../../scripts/site.mjs';
import { SECURITY_HEADERS, startServer as serveMjs, siteMounts } from '../../scripts/serve.mjs';

// NEUROLENS_E2E_WASM_DIR, _WASM_THREADS_DIR, _WASM_NOSIMD_DIR: other builds (as in the harness).
const BUILD_DIRS = Object.fromEntries(VARIANTS.map((b) => [b, path.resolve(ROOT,
  process.env[`NEUROLENS_E2E_${b.toUpperCase().replace('-', '_')}_DIR`] ?? `build/${b}`)]));
const BUILT = VARIANTS.filter((b) => fs.existsSync(path.join(BUILD_DIRS[b], 'neurolens.js')));
const THREADS = BUILT.includes('wasm-threads');
const WORK = path.join(ROOT, `build/e2e/site-${process.pid}`);
const SITE = path.join(WORK, 'site');
const PYTHON = '/usr/bin/python3';

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Python's http.server on DIR: no COOP/COEP, no CSP, nothing but files.
const servers = new Set();  // stopped in after(), whatever a failed test left running
async function pythonServer(dir) {
  const port = await freePort();
  const child = spawn(PYTHON, ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${origin}/`);
      const headers = Object.fromEntries(r.headers);
      await r.arrayBuffer();
      if (r.ok) return { origin, headers, log: () => log, stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill(); }) };
    } catch { /* not up yet */ }
    if (i > 100 || child.exitCode !== null) throw new Error(`http.server did not start: ${log}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const IMAGE = encodePng(90, 90, syntheticSlice(90, { seed: 4, radius: 0.12 }));

async function reloadReady(page) {
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  assert.equal(ready, 'true', await page.textContent('#status'));
}

// The service worker has the running engine build in its cache (lib/offline.js sets this).
async function offlineReady(page) {
  await page.waitForFunction(() => document.body.dataset.offline, null, { timeout: 120000 });
  assert.equal(await page.evaluate(() => document.body.dataset.offline), 'ready');
}

let browser, server, site;
before(async () => {
  if (!BUILT.length) return;
  fs.rmSync(WORK, { recursive: true, force: true });
  fs.mkdirSync(WORK, { recursive: true });
  site = await buildSite({ out: SITE, builds: BUILT, buildDirs: BUILD_DIRS, quiet: true });
  server = await pythonServer(SITE);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  for (const child of servers) child.kill();
  fs.rmSync(WORK, { recursive: true, force: true });
});

const skip = !BUILT.length && 'no engine build (build/wasm) to make a site from';

test('site: the host sends no headers; the CSP meta tag blocks another origin', { skip }, async () => {
  for (const name of ['content-security-policy', 'cross-origin-opener-policy', 'cross-origin-embedder-policy']) {
    assert.equal(server.headers[name], undefined, `http.server sent ${name}`);
  }
  // The other origin: a server that counts what it is asked for.
  let hits = 0;
  const foreign = http.createServer((req, res) => {
    hits++;
    res.writeHead(200, { 'Content-Type': 'text/javascript', 'Access-Control-Allow-Origin': '*' });
    res.end('window.injected = true;');
  });
  await new Promise((resolve) => foreign.listen(0, '127.0.0.1', resolve));
  const other = `http://127.0.0.1:${foreign.address().port}`;

  const { page, context, requests } = await openPage(browser, server.origin);
  // The meta tag's policy is the development server's header but for frame-ancestors.
  const meta = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.content);
  assert.equal(`${meta}; frame-ancestors 'none'`, SECURITY_HEADERS['Content-Security-Policy']);
  // First visit: the document came from the host, not through the service worker (which would
  // add a CSP header and isolation): only the meta tag guards it.
  assert.equal(await page.evaluate(() => crossOriginIsolated), false);
  const outcome = await page.evaluate(async (url) => {
    const violations = [];
    document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.effectiveDirective} ${e.blockedURI}`));
    const script = document.createElement('script');
    script.src = `${url}/evil.js`;
    const loaded = await new Promise((resolve) => {
      script.onload = () => resolve('loaded');
      script.onerror = () => resolve('blocked');
      document.head.append(script);
    });
    const fetched = await fetch(`${url}/data`).then(() => 'fetched', () => 'blocked');
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { loaded, fetched, injected: Boolean(window.injected), violations };
  }, other);
  await new Promise((resolve) => foreign.close(resolve));
  assert.deepEqual([outcome.loaded, outcome.fetched, outcome.injected], ['blocked', 'blocked', false]);
  assert.ok(outcome.violations.some((v) => v.startsWith('script-src-elem') && v.includes(other)), outcome.violations.join('\n'));
  assert.ok(outcome.violations.some((v) => v.startsWith('connect-src') && v.includes(other)), outcome.violations.join('\n'));
  assert.equal(hits, 0, 'the other origin was never asked');
  // The page's own requests: only its origin (the blocked ones never left the browser).
  assert.deepEqual(foreignRequests(requests, server.origin).filter((u) => !u.startsWith(other)), []);
  await context.close();
});

test('site: after one reload the service worker makes the page cross-origin isolated and the threaded engine runs',
  { skip: skip || (!THREADS && 'build/wasm-threads is not built') }, async () => {
    const { page, context, requests, errors } = await openPage(browser, server.origin);
    // First visit: the host's headers (none) rule.
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    const first = await page.evaluate(() => window.neurolens.engineStatus);
    assert.deepEqual([first.build, first.threads, first.why], ['/wasm/neurolens.js', 1, 'not cross-origin isolated']);
    assert.match(await page.textContent('#status'),
      /engine: WebAssembly SIMD, 1 thread — not cross-origin isolated \(this host sends no isolation headers; reload once and the service worker supplies them\)$/);
    await offlineReady(page);
    await screenshot(page, 'site-first-visit');

    await reloadReady(page);
    assert.equal(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)), true);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const second = await page.evaluate(() => window.neurolens.engineStatus);
    assert.equal(second.build, '/wasm-threads/neurolens.js', JSON.stringify(second));
    assert.ok(second.threads > 1, `threads: ${second.threads}`);
    assert.match(await page.textContent('#status'), /engine: WebAssembly SIMD, \d threads$/);
    await chooseFiles(page, '#classify-files', [{ name: 'threads.png', mimeType: 'image/png', buffer: IMAGE }]);
    const [card] = await settledCards(page, 1, 120000);
    assert.equal(card.state, 'done', card.error);
    await screenshot(page, 'site-isolated');
    assert.deepEqual(foreignRequests(requests, server.origin), []);
    assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
    await context.close();
  });

test('site: offline after one visit, a reload shows the page and classifies an image', { skip }, async () => {
  // A server of its own (another port: another origin, another service worker), stopped below.
  const own = await pythonServer(SITE);
  const { page, context, requests } = await openPage(browser, own.origin);
  await offlineReady(page);  // the SIMD build it runs, and the threaded one for the next start

  await context.setOffline(true);
  await own.stop();  // nothing to fetch from, whatever the browser's offline mode covers
  await reloadReady(page);
  assert.equal(await page.evaluate(() => navigator.onLine), false);
  assert.match(await page.textContent('#privacy'), /never leave this computer/);
  // The service worker answered from its cache, with the isolation headers: threads offline.
  assert.equal(await page.evaluate(() => Boolean(navigator.serviceWorker.controller)), true);
  const offline = await page.evaluate(() => window.neurolens.engineStatus);
  assert.equal(offline.build, THREADS ? '/wasm-threads/neurolens.js' : '/wasm/neurolens.js', JSON.stringify(offline));
  if (THREADS) assert.equal(offline.why, '');
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'shipped');
  await chooseFiles(page, '#classify-files', [{ name: 'offline.png', mimeType: 'image/png', buffer: IMAGE }]);
  const [card] = await settledCards(page, 1, 120000);
  assert.equal(card.state, 'done', card.error);
  assert.ok(['glioma', 'meningioma', 'notumor', 'pituitary'].includes(card.prediction), card.prediction);
  await screenshot(page, 'site-offline');
  assert.deepEqual(foreignRequests(requests, own.origin), []);
  await context.close();
});

test('site: a new build deployed in its place is detected, and the update prompt reloads into it', { skip }, async () => {
  const dir = path.join(WORK, 'update');
  await buildSite({ out: dir, builds: ['wasm'], buildDirs: BUILD_DIRS, quiet: true });
  const own = await pythonServer(dir);
  const { page, context, requests } = await openPage(browser, own.origin);
  await offlineReady(page);
  await reloadReady(page);
  const before = await page.evaluate(() => document.querySelector('meta[name="neurolens-build"]').content);
  assert.equal(await page.$('#update-banner'), null);

  // The next release: a changed page, built and put where the old one was.
  const web = path.join(WORK, 'web-changed');
  fs.cpSync(path.join(ROOT, 'web'), web, { recursive: true });
  fs.appendFileSync(path.join(web, 'style.css'), '\n.site-header { border-bottom: 3px solid #5cc8ff; }\n');
  const next = await buildSite({ out: dir, builds: ['wasm'], web, buildDirs: BUILD_DIRS, quiet: true });
  assert.notEqual(next.version, before);

  await page.evaluate(() => window.neurolens.offline.checkForUpdate());
  await page.waitForSelector('#update-banner', { timeout: 60000 });
  assert.match(await page.textContent('#update-banner'), /new version of NeuroLens/);
  await screenshot(page, 'site-update-prompt');
  await Promise.all([page.waitForEvent('load', { timeout: 60000 }), page.click('#update-banner button.primary')]);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  assert.equal(await page.evaluate(() => document.querySelector('meta[name="neurolens-build"]').content), next.version);
  const cacheNames = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('neurolens-')));
  assert.deepEqual(cacheNames, [`neurolens-${next.version}`], 'the old version\'s cache is gone');
  assert.deepEqual(foreignRequests(requests, own.origin), []);
  await context.close();
  await own.stop();
});

test('site: the page is bundled: a few scripts on the first visit, the model and the wasm fetched in parallel', { skip }, async () => {
  // What the site holds: the bundles, none of web/'s modules.
  assert.ok(site.files.includes('app.js') && site.files.includes('worker.js'), site.files.join(' '));
  assert.deepEqual(site.files.filter((f) => /^(lib|views)\/.*\.js$/.test(f)), []);
  const app = fs.readFileSync(path.join(SITE, 'app.js'), 'utf8');
  assert.doesNotMatch(app, /from\s*["']\.\.?\/(lib|views)\//, 'app.js still imports web/ modules');

  // A fresh context (empty cache), requests in the order they start and finish: the page's
  // and its workers', not the service worker's (once the page has started, it keeps a copy of
  // the app shell and engine builds for offline use: this one and, the page not being
  // isolated yet, the threaded one for the next start).
  const context = await browser.newContext();
  const events = [];
  context.on('request', (r) => { if (!r.serviceWorker()) events.push(['start', r.url()]); });
  context.on('requestfinished', (r) => { if (!r.serviceWorker()) events.push(['end', r.url()]); });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.origin}/`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  assert.equal(await page.evaluate(() => document.body.dataset.ready), 'true', await page.textContent('#status'));
  await chooseFiles(page, '#classify-files', [{ name: 'bundled.png', mimeType: 'image/png', buffer: IMAGE }]);
  const [card] = await settledCards(page, 1, 120000);
  assert.equal(card.state, 'done', card.error);
  await offlineReady(page);

  const paths = (kind) => events.filter(([k]) => k === kind).map(([, u]) => new URL(u)).filter((u) => u.origin === server.origin).map((u) => u.pathname);
  const started = paths('start');
  const pageScripts = [...new Set(started.filter((p) => /\.m?js$/.test(p)))];
  for (const script of ['/app.js', '/worker.js', '/wasm/neurolens.js']) assert.ok(pageScripts.includes(script), `${script} was not fetched: ${pageScripts}`);
  assert.deepEqual(pageScripts.filter((p) => /^\/(lib|views)\//.test(p)), []);
  // the page, the worker, the engine's glue and the service worker: nothing else
  assert.deepEqual(pageScripts.filter((p) => !['/app.js', '/worker.js', '/wasm/neurolens.js', '/sw.js'].includes(p)), []);
  assert.ok(!started.some((p) => /neurolens-scans/.test(p)), 'the scan module was fetched at start');
  assert.ok(!started.some((p) => /^\/wasm-(threads|nosimd)\//.test(p)), 'another engine build was fetched at start');
  // In parallel: the model and the .wasm are both asked for before the glue has arrived.
  const at = (kind, re) => events.findIndex(([k, u]) => k === kind && re.test(new URL(u).pathname));
  const glueDone = at('end', /^\/wasm\/neurolens\.js$/);
  assert.ok(glueDone >= 0);
  assert.ok(at('start', /^\/wasm\/neurolens\.[0-9a-f]{12}\.wasm$/) < glueDone, 'the .wasm was asked for only after the glue had arrived');
  assert.ok(at('start', /^\/model\/neurolens\.[0-9a-f]{12}\.safetensors$/) < glueDone, 'the model was asked for only after the glue had arrived');
  assert.deepEqual(errors, []);
  await context.close();
});

function pngSize(bytes) {
  assert.equal(bytes.subarray(1, 4).toString('ascii'), 'PNG');
  return `${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`;
}

test('site: the manifest is valid and Chromium finds the page installable', { skip }, async () => {
  // Not incognito (Playwright's contexts are): that alone would fail the installability check.
  const profile = path.join(WORK, 'profile');
  const { page, context, requests } = await openPage(browser, server.origin, { context: await launchPersistentContext(profile) });
  const href = await page.$eval('link[rel="manifest"]', (l) => l.href);
  const manifest = await (await fetch(href)).json();
  assert.match(manifest.name, /NeuroLens/);
  assert.equal(manifest.short_name, 'NeuroLens');
  assert.equal(new URL(manifest.start_url, href).href, `${server.origin}/`);
  assert.equal(manifest.display, 'standalone');
  assert.ok(manifest.icons.length >= 2);
  for (const icon of manifest.icons) {
    const r = await fetch(new URL(icon.src, href));
    assert.equal(r.status, 200, icon.src);
    assert.equal(pngSize(Buffer.from(await r.arrayBuffer())), icon.sizes, icon.src);
  }
  assert.ok(manifest.icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable'));
  const accept = Object.values(manifest.file_handlers[0].accept).flat();
  for (const ext of ['.jpg', '.jpeg', '.png', '.dcm', '.nii', '.nii.gz']) assert.ok(accept.includes(ext), ext);
  assert.ok(new URL(manifest.file_handlers[0].action, href).href.startsWith(`${server.origin}/`));

  const cdp = await context.newCDPSession(page);
  const parsed = await cdp.send('Page.getAppManifest');
  assert.deepEqual(parsed.errors, [], JSON.stringify(parsed.errors));
  assert.equal(parsed.url, href);
  await page.evaluate(() => navigator.serviceWorker.ready);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  assert.deepEqual(installabilityErrors, []);
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});

test('site: scripts/serve.mjs --site (what scripts/serve runs) serves the built site with its headers: threads at once', { skip }, async () => {
  const { server: node, port } = await serveMjs({ port: 0, host: '127.0.0.1', mounts: siteMounts(SITE) });
  const origin = `http://127.0.0.1:${port}`;
  try {
    const { page, context, requests } = await openPage(browser, origin);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const status = await page.evaluate(() => window.neurolens.engineStatus);
    assert.equal(status.build, THREADS ? '/wasm-threads/neurolens.js' : '/wasm/neurolens.js', JSON.stringify(status));
    // The same bytes as on the static host.
    const served = await (await fetch(`${origin}/sw.js`)).text();
    assert.equal(served, fs.readFileSync(path.join(SITE, 'sw.js'), 'utf8'));
    await chooseFiles(page, '#classify-files', [{ name: 'served.png', mimeType: 'image/png', buffer: IMAGE }]);
    const [card] = await settledCards(page, 1, 120000);
    assert.equal(card.state, 'done', card.error);
    assert.deepEqual(foreignRequests(requests, origin), []);
    await context.close();
  } finally {
    node.closeAllConnections?.();
    await new Promise((resolve) => node.close(resolve));
  }
});
