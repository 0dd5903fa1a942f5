#!/usr/bin/env node
// The side-by-side benchmark behind scripts/bench (which builds first). Everything in one run,
// on this machine, in Debian's headless Chromium (bench/ page + workers), except the native
// figure. Prints a table; --json FILE writes every figure with its unit, plus `ratios`.
//
//   node scripts/bench.mjs [--json FILE] [--runs N] [--rounds N] [--train-seconds S]
//                          [--only cold-start] [--cold-page site|web] [--cold-runs N]
// --rounds N (default 3): NeuroLens and ONNX Runtime (web and native) are timed against each
// other in N alternating rounds (see alternate()).
// --only cold-start: just the page's cold start (seconds; needs build/wasm, and build/wasm-threads
// for the engine an isolated page runs). --cold-page: which page the cold start loads: `site`
// (default), the built site (scripts/site.mjs into a temporary folder, served with
// scripts/serve.mjs's headers, as `scripts/serve` does: what users get), or `web`, the development
// server's unbundled web/. --cold-runs N (default 5): cold starts, each in a fresh browser
// context; the median one is reported (every run's figures are in the JSON).
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer, defaultMounts, benchMounts, siteMounts } from './serve.mjs';
import { buildSite } from './site.mjs';
import { encodePng, syntheticSlice } from '../tests/e2e/helpers/png.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = path.join(ROOT, 'model/neurolens.safetensors');

function parseArgs(argv) {
  const o = { json: null, runs: 60, rounds: 3, trainSeconds: 15, only: null, coldPage: 'site', coldRuns: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--json') o.json = value();
    else if (a === '--runs') o.runs = Number(value());
    else if (a === '--rounds') o.rounds = Number(value());
    else if (a === '--train-seconds') o.trainSeconds = Number(value());
    else if (a === '--only') o.only = value();
    else if (a.startsWith('--only=')) o.only = a.slice(7);
    else if (a === '--cold-page') o.coldPage = value();
    else if (a === '--cold-runs') o.coldRuns = Number(value());
    else if (a === '-h' || a === '--help') {
      console.log('usage: scripts/bench [--json FILE] [--runs N (>= 50, default 60)] [--rounds N (default 3)] [--train-seconds S (default 15)]\n' +
                  '                     [--only cold-start | wasm-profile] [--cold-page site|web (default site)] [--cold-runs N (default 5)]');
      process.exit(0);
    } else throw new Error(`unknown argument '${a}'`);
  }
  if (!Number.isInteger(o.runs) || o.runs < 50) throw new Error('--runs must be a whole number >= 50 (the issue asks for medians of at least 50)');
  if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a whole number >= 1');
  if (!(o.trainSeconds > 0)) throw new Error('--train-seconds must be a positive number');
  if (o.only !== null && !['cold-start', 'wasm-profile'].includes(o.only)) throw new Error(`--only: 'cold-start' or 'wasm-profile' (got '${o.only}')`);
  if (!['site', 'web'].includes(o.coldPage)) throw new Error(`--cold-page must be 'site' or 'web' (got '${o.coldPage}')`);
  if (!Number.isInteger(o.coldRuns) || o.coldRuns < 1) throw new Error('--cold-runs must be a whole number >= 1');
  return o;
}

const log = (...a) => console.error('bench:', ...a);
// Browser inference timings start after this much warm-up (and at least 10 runs), for every
// peer alike: see bench/page.js.
const WARMUP_MS = 2000;
const maxAbsDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Head-to-head timings (NeuroLens against one peer at one thread count, or training steps
// against PyTorch's) run in rounds: each
// round times both sides one after the other, the side that goes first alternating, and each
// side's figure is the median of its round medians. On a shared machine a slow minute then
// falls on both sides of a ratio instead of on whichever ran during it. ours(round) and
// theirs(round) return results with their median in `key`; the first round's result is kept
// for everything else it reports, with the median over the rounds in `key`.
async function alternate(rounds, key, ours, theirs) {
  const a = [], b = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) { a.push(await ours(r)); b.push(await theirs(r)); }
    else { b.push(await theirs(r)); a.push(await ours(r)); }
  }
  const merged = (results) => ({ ...results[0], [key]: median(results.map((x) => x[key])), round_values: results.map((x) => x[key]) });
  return [merged(a), merged(b)];
}

// Native inference takes about a millisecond a pass: NeuroLens' and onnxruntime-node's are each
// timed over this many passes after NATIVE_WARMUP, so one stalled millisecond on a shared
// machine does not move the median.
const NATIVE_RUNS_PER_RUN = 5, NATIVE_WARMUP = 50;

function nativeBench(threads, runs, extra = threads === 1 ? ['--gemm-peak'] : []) {
  const exe = path.join(ROOT, 'build/native/neurolens');
  const r = spawnSync(exe, ['bench', '--model', MODEL, '--threads', String(threads), '--runs', String(runs), '--warmup', String(NATIVE_WARMUP),
    ...extra, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${exe} bench failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

// A 256 x 256 x 150 synthetic volume as a DICOM series and a NIfTI file (bench/make-volume.py),
// made once per run in the benchmark's temporary folder (served to the page at /bench-files/).
function makeVolume(dir) {
  const r = spawnSync('/usr/bin/python3', [path.join(ROOT, 'bench/make-volume.py'), dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench/make-volume.py failed: ${r.stderr || r.error}`);
  return { dir, series: path.join(dir, 'series'), nifti: path.join(dir, 'volume.nii.gz') };
}

// Native decode + classify of every slice (neurolens bench-scan): slices per second.
function nativeScanBench(scan, threads) {
  const exe = path.join(ROOT, 'build/native/neurolens');
  const r = spawnSync(exe, ['bench-scan', '--model', MODEL, '--threads', String(threads), '--json', scan], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${exe} bench-scan failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

// The shipped model as ONNX (neurolens export), for the onnxruntime peers.
function exportOnnx(dir) {
  const file = path.join(dir, 'neurolens.onnx');
  const r = spawnSync(path.join(ROOT, 'build/native/neurolens'), ['export', '--model', MODEL, '--onnx', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`neurolens export failed: ${r.stderr || r.error}`);
  return file;
}

function processThreads() {
  const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : null;
}

// onnxruntime-node (CPU execution provider), batch 1, in this process. The threads it really
// uses are counted: the process's threads before and while its session exists.
async function ortNativeInference(onnxFile, input, shape, threads, runs, warmup) {
  const ort = (await import('onnxruntime-node')).default;
  const before = processThreads();
  const session = await ort.InferenceSession.create(onnxFile, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const feeds = { input: new ort.Tensor('float32', input, shape) };
  let out = null;
  for (let i = 0; i < warmup; i++) out = await session.run(feeds);
  const threadsWhileRunning = processThreads();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    out = await session.run(feeds);
    times.push(performance.now() - t0);
  }
  await session.release();
  return { version: ort.env.versions?.node ?? ort.env.versions?.common, intra_op_threads_asked: threads,
           extra_threads_while_running: threadsWhileRunning - before,
           median_ms: median(times),
           probabilities: Array.from(out.probabilities.data), logits: Array.from(out.logits.data) };
}

// PyTorch (Debian's python3-torch, CPU) on the same network: bench/pytorch-peer.py.
function pytorchPeer(input, runs) {
  const file = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'neurolens-torch-')), 'input.f32');
  fs.writeFileSync(file, Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  const r = spawnSync('/usr/bin/python3', [path.join(ROOT, 'bench/pytorch-peer.py'), MODEL, file, '--runs', String(runs), '--batch', '32'],
    { encoding: 'utf8', maxBuffer: 1 << 24 });
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`bench/pytorch-peer.py failed: ${(r.stderr || String(r.error)).slice(-800)}`);
  return JSON.parse(r.stdout);
}

// NeuroLens native training steps with the peer's settings: the shipped network (resnet-s at
// 160 px), batch 32, 2 threads, no augmentation (PyTorch's batches are ready-made tensors too).
function nativeTrainBench() {
  const r = spawnSync(path.join(ROOT, 'build/native/neurolens'), ['bench-train', '--input-size', '160', '--batch', '32', '--threads', '2', '--steps', '10',
    '--no-augment', '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`neurolens bench-train failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

// The largest difference between two log-softmax vectors, given probabilities (ours) and
// logits (a peer's): the logits agree up to the softmax's shift exactly when these agree.
function logProbabilityDiff(probabilities, logits) {
  const m = Math.max(...logits);
  const lse = m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
  return probabilities.reduce((worst, p, k) => Math.max(worst, Math.abs(Math.log(p) - (logits[k] - lse))), 0);
}

// Training images for NeuroLens' fine-tuning API (it decodes files): synthetic slices at the
// model's input size, four classes by the position of a bright blob.
function trainingImages(size, count, classes) {
  return Array.from({ length: count }, (_, i) => {
    const k = i % classes.length;
    const pixels = syntheticSlice(size, { seed: i + 1, radius: 0.12, cx: [0.3, 0.7, 0.5, 0.5][k % 4], cy: [0.4, 0.4, 0.7, 0.3][k % 4] });
    return { label: classes[k], base64: Buffer.from(encodePng(size, size, pixels)).toString('base64') };
  });
}

async function coldStart(browser, origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  // Every request of the page and its workers (a fresh context has an empty cache anyway);
  // the service worker's own (a built site's offline copy, made once the page has started)
  // are counted apart.
  const sizes = [];
  context.on('requestfinished', (request) => sizes.push(request.sizes().then(
    (s) => ({ url: request.url(), bytes: s.responseBodySize + s.responseHeadersSize, sw: Boolean(request.serviceWorker()) }),
    () => ({ url: request.url(), bytes: 0, sw: Boolean(request.serviceWorker()) }))));
  // The moment a result card first carries a prediction, on the page's own clock (0 = navigation).
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.querySelector('[data-prediction]')) {
        window.__firstResultMs = performance.now();
        observer.disconnect();
      }
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-prediction'] });
  });
  const image = { name: 'slice.png', mimeType: 'image/png', buffer: Buffer.from(encodePng(256, 256, syntheticSlice(256, { radius: 0.1 }))) };
  // The image is chosen the moment the page says it is ready (engine started, model loaded).
  await page.goto(`${origin}/`, { waitUntil: 'commit' });
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000, polling: 5 });
  const readyMs = await page.evaluate(() => performance.now());
  if ((await page.evaluate(() => document.body.dataset.ready)) !== 'true')
    throw new Error(`the page did not start: ${await page.textContent('#status')}`);
  await page.setInputFiles('#classify-files', image);
  await page.waitForFunction(() => window.__firstResultMs !== undefined, null, { timeout: 60000 });
  const firstResultMs = await page.evaluate(() => window.__firstResultMs);
  const engine = await page.textContent('#status');
  const responses = await Promise.all(sizes);
  await context.close();

  // Bytes by kind: as transferred (this server sends them uncompressed) and gzip -9 of the
  // same bodies (what a compressing host would send).
  const kinds = {}, serviceWorker = { files: 0, transferred_bytes: 0 }, fetched = [];
  for (const { url, bytes, sw } of responses) {
    const u = new URL(url);
    if (u.origin !== origin || !u.protocol.startsWith('http')) continue;  // not blob: or data: URLs
    if (sw) { serviceWorker.files++; serviceWorker.transferred_bytes += bytes; continue; }
    fetched.push(u.pathname);
    const kind = u.pathname.endsWith('.wasm') ? 'wasm' : /\.m?js$/.test(u.pathname) ? 'js'
      : u.pathname.endsWith('.safetensors') ? 'model' : 'other';
    let body;
    try {
      body = Buffer.from(await (await fetch(url)).arrayBuffer());
    } catch (e) {
      throw new Error(`cold start: fetching ${url} again to measure it failed: ${e.cause?.message ?? e.message}`);
    }
    const k = (kinds[kind] ??= { files: 0, transferred_bytes: 0, raw_bytes: 0, gzip_bytes: 0 });
    k.files++;
    k.transferred_bytes += bytes;
    k.raw_bytes += body.length;
    k.gzip_bytes += zlib.gzipSync(body, { level: 9 }).length;
  }
  const total = Object.values(kinds).reduce((t, k) => ({ files: t.files + k.files, transferred_bytes: t.transferred_bytes + k.transferred_bytes,
    raw_bytes: t.raw_bytes + k.raw_bytes, gzip_bytes: t.gzip_bytes + k.gzip_bytes }), { files: 0, transferred_bytes: 0, raw_bytes: 0, gzip_bytes: 0 });
  return { first_result_ms: firstResultMs, ready_ms: readyMs, engine, bytes: kinds, total, fetched, service_worker: serviceWorker };
}

// The page's cold start, `runs` times (each in a fresh context), the median run reported with
// every run's first-result and ready times. page 'web': the development server's web/ at
// `webOrigin` (or a server of its own); 'site': the built site (scripts/site.mjs, from the
// engine builds there are) in a temporary folder, served with scripts/serve.mjs's headers.
async function coldStarts(browser, { page, runs, webOrigin }) {
  let server = null, dir = null, origin = webOrigin;
  if (page === 'site') {
    dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'neurolens-bench-site-'));
    const site = await buildSite({ out: path.join(dir, 'site'), quiet: true });
    log(`cold start: the built site (engine builds: ${site.builds.join(', ')}; ${site.files.length} files)`);
    ({ server } = await startServer({ port: 0, mounts: siteMounts(site.out) }));
  } else if (!origin) {
    ({ server } = await startServer({ port: 0, mounts: defaultMounts(ROOT) }));
  }
  if (server) origin = `http://127.0.0.1:${server.address().port}`;
  try {
    const all = [];
    for (let i = 0; i < runs; i++) {
      const r = await coldStart(browser, origin);
      log(`cold start ${i + 1}/${runs}: first result ${r.first_result_ms.toFixed(0)} ms, ready ${r.ready_ms.toFixed(0)} ms, ` +
          `${r.total.files} files, ${(r.total.transferred_bytes / 1e6).toFixed(2)} MB (js: ${r.bytes.js?.files ?? 0} files)`);
      all.push(r);
    }
    const median = [...all].sort((a, b) => a.first_result_ms - b.first_result_ms)[(all.length - 1) >> 1];
    return { ...median, page, runs: all.map((r) => ({ first_result_ms: r.first_result_ms, ready_ms: r.ready_ms, files: r.total.files,
      transferred_bytes: r.total.transferred_bytes })) };
  } finally {
    server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

// --only cold-start: the cold start alone.
async function coldStartOnly(opts) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  let cold;
  try {
    cold = await coldStarts(browser, { page: opts.coldPage, runs: opts.coldRuns });
  } finally {
    await browser.close();
  }
  const f = (v) => Number(v).toFixed(0);
  console.log([
    `cold start (${cold.page === 'site' ? 'built site' : 'web/, unbundled'}; median of ${cold.runs.length}): first result ${f(cold.first_result_ms)} ms after navigation ` +
      `(page ready at ${f(cold.ready_ms)} ms; ${cold.engine})`,
    `  runs: ${cold.runs.map((r) => f(r.first_result_ms)).join(', ')} ms`,
    `  transferred ${(cold.total.transferred_bytes / 1e6).toFixed(2)} MB in ${cold.total.files} files, ${(cold.total.gzip_bytes / 1e6).toFixed(2)} MB gzipped` +
      ` (and the service worker's offline copy: ${cold.service_worker.files} files, ${(cold.service_worker.transferred_bytes / 1e6).toFixed(2)} MB)`,
    ...Object.entries(cold.bytes).map(([k, b]) => `  ${k.padEnd(6)} ${String(b.files).padStart(2)} files  ${(b.raw_bytes / 1e3).toFixed(0).padStart(7)} kB raw  ${(b.gzip_bytes / 1e3).toFixed(0).padStart(7)} kB gzip`),
    `  cold_start_first_result_ms    ${f(cold.first_result_ms).padStart(8)}   <= 1000`,
  ].join('\n'));
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({ cold_start: cold, units: { 'cold_start.first_result_ms': 'ms', 'cold_start.*bytes': 'bytes' } }, null, 2) + '\n');
    log(`wrote ${opts.json}`);
  }
}

// --only wasm-profile: each layer's median time in the browser builds (wasm on 1 thread,
// wasm-threads on 2), beside native's (`neurolens bench --profile`), to see which layers do
// not speed up with a second thread.
async function wasmProfileOnly(opts) {
  const native = [1, 2].map((threads) => nativeBench(threads, opts.runs * 5, ['--profile']).layers);
  const { server, port } = await startServer({ port: 0, mounts: [...benchMounts(ROOT), ...defaultMounts(ROOT)] });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
  let wasm;
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/bench/`);
    await page.waitForFunction(() => window.bench !== undefined);
    const run = (arg) => page.evaluate((a) => window.bench.neurolensProfile(a), arg);
    wasm = [await run({ build: 'wasm', threads: 1, runs: opts.runs, warmup: 10, warmupMs: WARMUP_MS }),
            await run({ build: 'wasm-threads', threads: 2, runs: opts.runs, warmup: 10, warmupMs: WARMUP_MS })];
  } finally {
    await browser.close();
    server.close();
  }
  const f = (v) => v.toFixed(4).padStart(9);
  const x = (a, b) => (a > 0 && b > 0 ? `${(a / b).toFixed(2)}x` : '-').padStart(6);  // the browser's clock ticks in 5 us
  const rows = wasm[0].layers.map((l, i) => `  ${l.name.padEnd(14)} ${l.type.padEnd(16)} ${f(l.ms)} ${f(wasm[1].layers[i].ms)} ${x(l.ms, wasm[1].layers[i].ms)}` +
    `   ${f(native[0][i].median_ms)} ${f(native[1][i].median_ms)} ${x(native[0][i].median_ms, native[1][i].median_ms)}`);
  const sum = (layers, key) => layers.reduce((t, l) => t + l[key], 0);
  const [w1, w2, n1, n2] = [sum(wasm[0].layers, 'ms'), sum(wasm[1].layers, 'ms'), sum(native[0], 'median_ms'), sum(native[1], 'median_ms')];
  console.log(['median ms per layer        wasm: 1 thread  2 threads  speed-up   native: 1 thread  2 threads  speed-up', ...rows,
    `  ${'sum of the layers'.padEnd(31)} ${f(w1)} ${f(w2)} ${x(w1, w2)}   ${f(n1)} ${f(n2)} ${x(n1, n2)}`,
    `  ${'a pass without the layer clock'.padEnd(31)} ${f(wasm[0].passMs)} ${f(wasm[1].passMs)} ${x(wasm[0].passMs, wasm[1].passMs)}`,
    '  (a sum above a pass means timing layer by layer slowed that build down: read its layers against each other)'].join('\n'));
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({ wasm_profile: { wasm_1t: wasm[0].layers, wasm_threads_2t: wasm[1].layers, native_1t: native[0], native_2t: native[1],
      wasm_1t_pass_ms: wasm[0].passMs, wasm_threads_2t_pass_ms: wasm[1].passMs } }, null, 2) + '\n');
    log(`wrote ${opts.json}`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.only === 'cold-start') return coldStartOnly(opts);
  if (opts.only === 'wasm-profile') return wasmProfileOnly(opts);
  const out = { machine: { cores: (await import('node:os')).cpus().length }, units: {} };


  const files = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'neurolens-bench-files-'));
  const onnxFile = exportOnnx(files);
  log('native scan reading + classification, 256 x 256 x 150 (DICOM series and NIfTI)');
  const volume = makeVolume(files);
  const scans = {};
  for (const [kind, file] of [['dicom_series', volume.series], ['nifti_gz', volume.nifti]])
    for (const threads of [1, 2]) scans[`${kind}_native_${threads}t`] = nativeScanBench(file, threads);
  const { server, port } = await startServer({ port: 0, mounts: [{ prefix: '/bench-files/', dir: files }, ...benchMounts(ROOT), ...defaultMounts(ROOT)] });
  const origin = `http://127.0.0.1:${port}`;  // not "localhost": Node may resolve it to ::1
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    // SwiftShader gives TensorFlow.js' WebGL backend a (software) GPU in a headless machine.
    args: ['--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${origin}/bench/`);
    await page.waitForFunction(() => window.bench !== undefined);
    if (!(await page.evaluate(() => window.bench.crossOriginIsolated())))
      throw new Error('the benchmark page is not cross-origin isolated: no multi-threaded runs possible');
    const run = (fn, arg) => page.evaluate(([f, a]) => window.bench[f](a), [fn, arg]);
    const runs = opts.runs, warmup = 10, warmupMs = WARMUP_MS;

    log(`NeuroLens wasm and ONNX Runtime Web (wasm SIMD) inference, 1 and 2 threads, alternating in ${opts.rounds} rounds (ONNX Runtime Web in a fresh worker each time)`);
    const [nl1, ortWeb1] = await alternate(opts.rounds, 'medianMs',
      () => run('neurolensInference', { build: 'wasm', threads: 1, runs, warmup, warmupMs }),
      () => run('ortInference', { threads: 1, runs, warmup, warmupMs }));
    const [nl2, ortWeb2] = await alternate(opts.rounds, 'medianMs',
      () => run('neurolensInference', { build: 'wasm-threads', threads: 2, runs, warmup, warmupMs }),
      () => run('ortInference', { threads: 2, runs, warmup, warmupMs }));
    log('TensorFlow.js wasm inference, 1 and 2 threads');
    const tf1 = await run('tfjsInference', { backend: 'wasm', threads: 1, runs, warmup, warmupMs });
    const tf2 = await run('tfjsInference', { backend: 'wasm', threads: 2, runs, warmup, warmupMs });
    const diff = Math.max(maxAbsDiff(nl1.probabilities, tf1.probabilities), maxAbsDiff(nl1.probabilities, tf2.probabilities),
                          maxAbsDiff(nl1.probabilities, nl2.probabilities));
    if (!(diff <= 1e-4))
      throw new Error(`TensorFlow.js and NeuroLens disagree: max |difference| of the probabilities is ${diff} (> 1e-4); ` +
                      'the timings would compare different networks');

    const inputNhwc = Float32Array.from(await run('input'));
    const { height: ih, width: iw, channels: ic } = nl1.input;
    const inputNchw = new Float32Array(inputNhwc.length);
    for (let y = 0; y < ih; y++) for (let x = 0; x < iw; x++) for (let c = 0; c < ic; c++)
      inputNchw[(c * ih + y) * iw + x] = inputNhwc[(y * iw + x) * ic + c];
    log(`NeuroLens native and onnxruntime-node (CPU) inference, 1 and 2 threads, alternating in ${opts.rounds} rounds; GEMM peak`);
    const nativeRuns = runs * NATIVE_RUNS_PER_RUN;
    const [native1, ortNative1] = await alternate(opts.rounds, 'median_ms',
      (r) => nativeBench(1, nativeRuns, r === 0 ? ['--gemm-peak'] : []),
      () => ortNativeInference(onnxFile, inputNchw, [1, ic, ih, iw], 1, nativeRuns, NATIVE_WARMUP));
    const [native2, ortNative2] = await alternate(opts.rounds, 'median_ms',
      () => nativeBench(2, nativeRuns),
      () => ortNativeInference(onnxFile, inputNchw, [1, ic, ih, iw], 2, nativeRuns, NATIVE_WARMUP));
    // The GEMM-peak share was measured with the first round's median: restate it for the median of the rounds.
    native1.gflops_per_s = native1.mflops_per_image / native1.median_ms;
    native1.fraction_of_gemm_peak = native1.gflops_per_s / native1.gemm_peak_gflops_per_s;
    log(`NeuroLens native and PyTorch (CPU) training steps, batch 32, 2 threads, alternating in ${opts.rounds} rounds; PyTorch inference, 1 and 2 threads`);
    const [nativeTrain, torchPeer] = await alternate(opts.rounds, 'images_per_s',
      () => { const r = nativeTrainBench(); return { ...r, images_per_s: r.runs[0].images_per_second }; },
      () => { const r = pytorchPeer(inputNhwc, runs); return { ...r, images_per_s: r.train.images_per_s }; });
    const peerDiffs = {
      ort_web_1t: logProbabilityDiff(nl1.probabilities, ortWeb1.logits), ort_web_2t: logProbabilityDiff(nl1.probabilities, ortWeb2.logits),
      ort_native_1t: logProbabilityDiff(nl1.probabilities, ortNative1.logits), ort_native_2t: logProbabilityDiff(nl1.probabilities, ortNative2.logits),
      pytorch: logProbabilityDiff(nl1.probabilities, torchPeer.logits),
    };
    for (const [peer, d] of Object.entries(peerDiffs))
      if (!(d <= 1e-4)) throw new Error(`${peer} and NeuroLens disagree: max |difference| of the log-probabilities is ${d} (> 1e-4)`);

    log('XNNPACK GEMM peak in the browser, 1 and 2 threads');
    const peak1 = await run('gemmPeak', { build: 'wasm', threads: 1, seconds: 2 });
    const peak2 = await run('gemmPeak', { build: 'wasm-threads', threads: 2, seconds: 2 });

    const size = nl1.input.height;
    const classes = ['glioma', 'meningioma', 'notumor', 'pituitary'];
    const images = trainingImages(size, 96, classes);
    const fine = {};
    for (const [mode, trainableLayers] of [['whole', 0], ['last', 1]]) {
      log(`fine-tuning (${mode} network): NeuroLens 1 and 2 threads`);
      fine[mode] = {
        neurolens_1t: await run('neurolensFineTune', { build: 'wasm', threads: 1, images, epochs: 3, batchSize: 16, trainableLayers }),
        neurolens_2t: await run('neurolensFineTune', { build: 'wasm-threads', threads: 2, images, epochs: 3, batchSize: 16, trainableLayers }),
        tfjs: {},
      };
      for (const backend of ['wasm', 'webgl', 'cpu']) {
        log(`fine-tuning (${mode} network): TensorFlow.js ${backend}`);
        try {
          fine[mode].tfjs[backend] = await run('tfjsFineTune', { backend, threads: backend === 'wasm' ? 2 : 1, batchSize: 16,
            trainableLayers, seconds: opts.trainSeconds });
        } catch (e) {
          fine[mode].tfjs[backend] = { error: String(e.message ?? e).split('\n')[0].slice(0, 300) };
        }
      }
      const working = Object.entries(fine[mode].tfjs).filter(([, r]) => r.imagesPerSecond > 0);
      if (!working.length) throw new Error(`no TensorFlow.js backend could train the ${mode} network: ${JSON.stringify(fine[mode].tfjs)}`);
      const [best, r] = working.sort((a, b) => b[1].imagesPerSecond - a[1].imagesPerSecond)[0];
      fine[mode].tfjs_fastest = { backend: best, images_per_s: r.imagesPerSecond };
    }

    log('scan reading + classification in the page (scan module + engine in a worker), 1 and 2 threads');
    const seriesUrls = fs.readdirSync(volume.series).sort().map((f) => `/bench-files/series/${f}`);
    for (const [kind, urls] of [['dicom_series', seriesUrls], ['nifti_gz', ['/bench-files/volume.nii.gz']]]) {
      for (const [build, threads] of [['wasm', 1], ['wasm-threads', 2]]) {
        const r = await run('neurolensScan', { build, threads, urls });
        scans[`${kind}_wasm_${threads}t`] = { read_slices_per_s: r.readSlicesPerS, classify_slices_per_s: r.classifySlicesPerS, slices_per_s: r.slicesPerS };
      }
    }

    log(`cold start of the page (cache disabled; ${opts.coldPage === 'site' ? 'the built site' : 'web/, unbundled'})`);
    // In a browser of its own, as `--only cold-start` does: this one has run WebGL on SwiftShader
    // and every peer's workers, which a user's browser opening the page has not.
    await page.close();
    const coldBrowser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
    let cold;
    try {
      cold = await coldStarts(coldBrowser, { page: opts.coldPage, runs: opts.coldRuns, webOrigin: origin });
    } finally {
      await coldBrowser.close();
    }
    if (pageErrors.length) log('page errors:', pageErrors.join('; '));

    const gflops = (ms) => nl1.flops / 1e6 / ms;  // MFLOP per ms = GFLOP/s
    Object.assign(out, {
      model: { input: nl1.input, mflops_per_image: nl1.flops / 1e6, parameters: native1.parameters },
      inference_ms: {
        neurolens_wasm_1t: nl1.medianMs, neurolens_wasm_2t: nl2.medianMs,
        tfjs_wasm_1t: tf1.medianMs, tfjs_wasm_2t: tf2.medianMs,
        neurolens_native_1t: native1.median_ms, neurolens_native_2t: native2.median_ms,
      },
      inference_runs: runs, browser_inference_warmup: { runs: warmup, ms: warmupMs },
      head_to_head: { rounds: opts.rounds, round_medians_ms: {
        neurolens_wasm_1t: nl1.round_values, ort_web_1t: ortWeb1.round_values, neurolens_wasm_2t: nl2.round_values, ort_web_2t: ortWeb2.round_values,
        neurolens_native_1t: native1.round_values, ort_native_1t: ortNative1.round_values, neurolens_native_2t: native2.round_values, ort_native_2t: ortNative2.round_values } },
      native_inference_runs: runs * NATIVE_RUNS_PER_RUN, native_inference_warmup: NATIVE_WARMUP,
      outputs_max_abs_diff: diff,
      outputs_match_1e4: diff <= 1e-4,
      gemm_peak_gflops_per_s: { wasm_1t: peak1.gflopsPerSecond, wasm_2t: peak2.gflopsPerSecond, native_1t: native1.gemm_peak_gflops_per_s },
      inference_gflops_per_s: { wasm_1t: gflops(nl1.medianMs), wasm_2t: gflops(nl2.medianMs), native_1t: native1.gflops_per_s },
      fraction_of_gemm_peak: { wasm_1t: gflops(nl1.medianMs) / peak1.gflopsPerSecond, wasm_2t: gflops(nl2.medianMs) / peak2.gflopsPerSecond,
        native_1t: native1.fraction_of_gemm_peak },
      finetune_images_per_s: Object.fromEntries(Object.entries(fine).map(([mode, f]) => [mode, {
        neurolens_wasm_1t: f.neurolens_1t.imagesPerSecond, neurolens_wasm_2t: f.neurolens_2t.imagesPerSecond,
        ...Object.fromEntries(Object.entries(f.tfjs).map(([b, r]) => [`tfjs_${b}`, r.imagesPerSecond ?? null])),
        tfjs_fastest_backend: f.tfjs_fastest.backend,
      }])),
      finetune_errors: Object.fromEntries(Object.entries(fine).map(([mode, f]) => [mode,
        Object.fromEntries(Object.entries(f.tfjs).filter(([, r]) => r.error).map(([b, r]) => [`tfjs_${b}`, r.error]))])),
      cold_start: cold,
      peers: {
        ort_web: { version: ortWeb1.version, threads_reported: [ortWeb1.threads, ortWeb2.threads], simd: ortWeb1.simd,
                   cross_origin_isolated: ortWeb2.crossOriginIsolated },
        ort_native: { version: ortNative1.version, extra_threads_while_running: [ortNative1.extra_threads_while_running, ortNative2.extra_threads_while_running] },
        pytorch: { version: torchPeer.version, cpu_capability: torchPeer.cpu_capability, mkldnn: torchPeer.mkldnn,
                   threads_reported: [torchPeer.inference['1t'].threads, torchPeer.inference['2t'].threads, torchPeer.train.threads] },
        max_log_probability_diff: peerDiffs,
      },
      peer_inference_ms: { ort_web_1t: ortWeb1.medianMs, ort_web_2t: ortWeb2.medianMs, ort_native_1t: ortNative1.median_ms,
                           ort_native_2t: ortNative2.median_ms, pytorch_1t: torchPeer.inference['1t'].median_ms, pytorch_2t: torchPeer.inference['2t'].median_ms },
      train_images_per_s: { neurolens_native_2t: nativeTrain.images_per_s, pytorch_2t: torchPeer.images_per_s, batch: 32,
        rounds: { neurolens_native_2t: nativeTrain.round_values, pytorch_2t: torchPeer.round_values } },
      scan_slices_per_s: Object.fromEntries(Object.entries(scans).map(([k, r]) => [k, {
        read: r.read_slices_per_s, classify: r.classify_slices_per_s, total: r.slices_per_s }])),
    });
    out.units = { inference_ms: 'ms (median)', gemm_peak_gflops_per_s: 'GFLOP/s', inference_gflops_per_s: 'GFLOP/s',
      fraction_of_gemm_peak: 'ratio', finetune_images_per_s: 'images/s', scan_slices_per_s: 'slices/s', 'cold_start.first_result_ms': 'ms', 'cold_start.*bytes': 'bytes' };
    out.ratios = {
      inference_vs_tfjs_wasm: tf1.medianMs / nl1.medianMs,
      inference_vs_tfjs_wasm_2t: tf2.medianMs / nl2.medianMs,
      finetune_vs_tfjs: fine.whole.neurolens_1t.imagesPerSecond / fine.whole.tfjs_fastest.images_per_s,
      finetune_last_layers_vs_tfjs: fine.last.neurolens_1t.imagesPerSecond / fine.last.tfjs_fastest.images_per_s,
      wasm_over_native: nl1.medianMs / native1.median_ms,
      inference_vs_ort_web_1t: ortWeb1.medianMs / nl1.medianMs,
      inference_vs_ort_web_2t: ortWeb2.medianMs / nl2.medianMs,
      native_vs_ort_1t: ortNative1.median_ms / native1.median_ms,
      native_vs_ort_2t: ortNative2.median_ms / native2.median_ms,
      native_vs_pytorch_1t: torchPeer.inference['1t'].median_ms / native1.median_ms,
      native_train_vs_pytorch: nativeTrain.images_per_s / torchPeer.images_per_s,
      finetune_wasm_vs_pytorch_native: fine.whole.neurolens_2t.imagesPerSecond / torchPeer.images_per_s,
      cold_start_first_result_ms: cold.first_result_ms,
    };
    out.targets = { inference_vs_tfjs_wasm: '>= 1.5', finetune_vs_tfjs: '>= 5', wasm_over_native: '<= 2.5',
      fraction_of_gemm_peak: '>= 0.5', cold_start_first_result_ms: '<= 1000',
      inference_vs_ort_web_1t: '>= 1.2', inference_vs_ort_web_2t: '>= 1.2', native_vs_ort_1t: '>= 1.0', native_vs_ort_2t: '>= 1.0',
      native_train_vs_pytorch: '>= 1.5' };
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(files, { recursive: true, force: true });
  }
  printTable(out);
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(out, null, 2) + '\n');
    log(`wrote ${opts.json}`);
  }
}

function printTable(o) {
  const f = (v, d = 2) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(d));
  const i = o.inference_ms, g = o.fraction_of_gemm_peak, ft = o.finetune_images_per_s, r = o.ratios, c = o.cold_start;
  const lines = [
    `NeuroLens benchmark: ${o.model.input.height}x${o.model.input.width} input, ${f(o.model.mflops_per_image, 1)} MFLOP/image, ${o.machine.cores} cores, Chromium headless`,
    '',
    'inference, batch 1 (median ms)            1 thread    2 threads',
    `  NeuroLens wasm SIMD                     ${f(i.neurolens_wasm_1t).padStart(8)}    ${f(i.neurolens_wasm_2t).padStart(8)}`,
    `  TensorFlow.js wasm (XNNPACK)            ${f(i.tfjs_wasm_1t).padStart(8)}    ${f(i.tfjs_wasm_2t).padStart(8)}`,
    `  NeuroLens native x86                    ${f(i.neurolens_native_1t).padStart(8)}    ${f(i.neurolens_native_2t).padStart(8)}`,
    `  ${`ONNX Runtime Web ${o.peers.ort_web.version} wasm SIMD`.padEnd(38)}${f(o.peer_inference_ms.ort_web_1t).padStart(8)}    ${f(o.peer_inference_ms.ort_web_2t).padStart(8)}   (threads it reports: ${o.peers.ort_web.threads_reported.join(', ')})`,
    `  ${`onnxruntime-node ${o.peers.ort_native.version} CPU`.padEnd(38)}${f(o.peer_inference_ms.ort_native_1t).padStart(8)}    ${f(o.peer_inference_ms.ort_native_2t).padStart(8)}   (extra threads seen: ${o.peers.ort_native.extra_threads_while_running.join(', ')})`,
    `  ${`PyTorch ${o.peers.pytorch.version} CPU (${o.peers.pytorch.cpu_capability})`.padEnd(38)}${f(o.peer_inference_ms.pytorch_1t).padStart(8)}    ${f(o.peer_inference_ms.pytorch_2t).padStart(8)}   (threads it reports: ${o.peers.pytorch.threads_reported.slice(0, 2).join(', ')})`,
    `  peers' log-probabilities vs ours: max |diff| ${Math.max(...Object.values(o.peers.max_log_probability_diff)).toExponential(2)} (all within 1e-4)`,
    `training, batch 32, 2 threads (images/s): NeuroLens native ${f(o.train_images_per_s.neurolens_native_2t, 1)}, PyTorch ${f(o.train_images_per_s.pytorch_2t, 1)}`,
    `  outputs: max |ours - theirs| = ${o.outputs_max_abs_diff.toExponential(2)} (${o.outputs_match_1e4 ? 'match' : 'DO NOT MATCH'} within 1e-4)`,
    '',
    `GEMM peak (GFLOP/s): wasm ${f(o.gemm_peak_gflops_per_s.wasm_1t, 1)} (1t), ${f(o.gemm_peak_gflops_per_s.wasm_2t, 1)} (2t); native ${f(o.gemm_peak_gflops_per_s.native_1t, 1)}`,
    `inference reaches: wasm ${f(100 * g.wasm_1t, 0)}% (1t), ${f(100 * g.wasm_2t, 0)}% (2t); native ${f(100 * g.native_1t, 0)}% of that peak`,
    '',
    'fine-tuning (images/s, batch 16)    NeuroLens 1t  NeuroLens 2t  tfjs wasm  tfjs webgl  tfjs cpu',
    ...['whole', 'last'].map((m) => `  ${(m === 'whole' ? 'whole network' : 'last layer only').padEnd(32)}  ${f(ft[m].neurolens_wasm_1t, 1).padStart(10)}  ${f(ft[m].neurolens_wasm_2t, 1).padStart(12)}  ${f(ft[m].tfjs_wasm, 1).padStart(9)}  ${f(ft[m].tfjs_webgl, 1).padStart(10)}  ${f(ft[m].tfjs_cpu, 1).padStart(8)}`),
    ...Object.entries(o.finetune_errors).flatMap(([m, e]) => Object.entries(e).map(([b, msg]) => `  (${m}: ${b} cannot train: ${msg.slice(0, 100)})`)),
    '',
    `cold start (${c.page === 'site' ? 'built site' : 'web/'}, median of ${c.runs.length}): first result ${f(c.first_result_ms, 0)} ms after navigation (page ready at ${f(c.ready_ms, 0)} ms; ${c.engine}); transferred ${(c.total.transferred_bytes / 1e6).toFixed(2)} MB, ` +
      `${(c.total.gzip_bytes / 1e6).toFixed(2)} MB gzipped`,
    ...Object.entries(c.bytes).map(([k, b]) => `  ${k.padEnd(6)} ${String(b.files).padStart(2)} files  ${(b.raw_bytes / 1e3).toFixed(0).padStart(7)} kB raw  ${(b.gzip_bytes / 1e3).toFixed(0).padStart(7)} kB gzip`),
    '',
    'scan, 256x256x150 (slices/s)           read   classify     total',
    ...Object.entries(o.scan_slices_per_s).map(([k, v]) => `  ${k.padEnd(32)} ${f(v.read, 0).padStart(7)} ${f(v.classify, 0).padStart(10)} ${f(v.total, 0).padStart(9)}`),
    '',
    'ratios                          measured   target',
    `  inference_vs_tfjs_wasm (1t)   ${f(r.inference_vs_tfjs_wasm).padStart(8)}   >= 1.5   (2 threads: ${f(r.inference_vs_tfjs_wasm_2t)})`,
    `  finetune_vs_tfjs (whole)      ${f(r.finetune_vs_tfjs).padStart(8)}   >= 5     (last layer: ${f(r.finetune_last_layers_vs_tfjs)})`,
    `  wasm_over_native              ${f(r.wasm_over_native).padStart(8)}   <= 2.5`,
    `  inference_vs_ort_web_1t       ${f(r.inference_vs_ort_web_1t).padStart(8)}   >= 1.2   (2 threads: ${f(r.inference_vs_ort_web_2t)}, target >= 1.2)`,
    `  native_vs_ort_1t              ${f(r.native_vs_ort_1t).padStart(8)}   >= 1.0   (2 threads: ${f(r.native_vs_ort_2t)}, target >= 1.0)`,
    `  (each side of the ONNX Runtime ratios is the median of ${o.head_to_head.rounds} alternating rounds; round by round:`,
    ...[['ort_web_1t', 'neurolens_wasm_1t'], ['ort_web_2t', 'neurolens_wasm_2t'], ['ort_native_1t', 'neurolens_native_1t'], ['ort_native_2t', 'neurolens_native_2t']]
      .map(([theirs, ours]) => `     ${theirs.padEnd(14)} ${o.head_to_head.round_medians_ms[theirs].map((t, k) => f(t / o.head_to_head.round_medians_ms[ours][k])).join('  ')}`),
    '  )',
    `  native_train_vs_pytorch       ${f(r.native_train_vs_pytorch).padStart(8)}   >= 1.5   (alternating rounds too; round by round: ${o.train_images_per_s.rounds.neurolens_native_2t.map((v, k) => f(v / o.train_images_per_s.rounds.pytorch_2t[k])).join('  ')})`,
    `  finetune_wasm_vs_pytorch_native ${f(r.finetune_wasm_vs_pytorch_native).padStart(6)}`,
    `  cold_start_first_result_ms    ${f(r.cold_start_first_result_ms, 0).padStart(8)}   <= 1000`,
  ];
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(`bench: ${e.message ?? e}`);
  process.exit(1);
});
