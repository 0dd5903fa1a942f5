// The other engine builds in the page, each checked against the single-threaded SIMD build
// (run here under Node) on the same model and image:
//  - build/wasm-threads (SIMD + pthreads): picked on the cross-origin isolated page;
//  - build/wasm-nosimd (plain wasm): what browsers without WebAssembly SIMD get, and the
//    last resort when no other build loads.
// The status line says why a better build is not running; a page that is not cross-origin
// isolated gets the single-threaded SIMD build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage, screenshot } from './helpers/harness.mjs';
import { encodePng, syntheticSlice } from './helpers/png.mjs';
import { testModelBytes } from './helpers/test-model.mjs';

const THREADS_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_THREADS_DIR ?? 'build/wasm-threads');
const SINGLE_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_DIR ?? 'build/wasm');
const NOSIMD_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_NOSIMD_DIR ?? 'build/wasm-nosimd');
const built = fs.existsSync(path.join(THREADS_DIR, 'neurolens.js'));
const builtSimd = fs.existsSync(path.join(SINGLE_DIR, 'neurolens.js'));
const builtPlain = fs.existsSync(path.join(NOSIMD_DIR, 'neurolens.js'));
const IMAGE = encodePng(71, 67, syntheticSlice(71, { seed: 12, radius: 0.12 }).slice(0, 71 * 67));

let browser, expected;
before(async () => {
  if (!builtSimd) return;
  browser = await launchBrowser();
  const { default: createNeuroLens } = await import(path.join(SINGLE_DIR, 'neurolens.js'));
  const NL = await createNeuroLens({ wasmBinary: fs.readFileSync(path.join(SINGLE_DIR, 'neurolens.wasm')) });
  const single = new NL.Engine();
  single.loadModel(new Uint8Array(testModelBytes()));
  expected = single.classify(new Uint8Array(IMAGE), { gradcam: true });
  single.delete();
});
after(async () => {
  await browser?.close();
});

async function classifyInPage(page) {
  return page.evaluate(async (bytes) => {
    const r = await window.neurolens.engine.request('classify', { bytes: new Uint8Array(bytes), gradcam: true });
    return { probabilities: Array.from(r.probabilities), heatmap: Array.from(r.heatmap.data) };
  }, [...IMAGE]);
}

function assertAgrees(got) {
  got.probabilities.forEach((p, i) => assert.ok(Math.abs(p - expected.probabilities[i]) <= 1e-5, `p[${i}] ${p} vs ${expected.probabilities[i]}`));
  got.heatmap.forEach((v, i) => assert.ok(Math.abs(v - expected.heatmap.data[i]) <= 1e-4, `heatmap[${i}] ${v} vs ${expected.heatmap.data[i]}`));
}

test('the isolated page runs the threaded build and agrees with the single-threaded one',
  { skip: !built && `${path.relative(ROOT, THREADS_DIR)} is not built (scripts/test and scripts/serve build it)` }, async () => {
    const server = await startServer();
    const { page, context } = await openPage(browser, server.origin);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const status = await page.evaluate(() => window.neurolens.engineStatus);
    assert.equal(status.build, '/wasm-threads/neurolens.js', JSON.stringify(status));
    assert.ok(status.threads > 1, `threads: ${status.threads}`);
    assert.match(await page.textContent('#status'), /\d threads/);

    assertAgrees(await classifyInPage(page));
    await context.close();
    await server.stop();
  });

test('the plain-wasm build runs the page when it is the only one that loads',
  { skip: !builtPlain && 'build/wasm-nosimd is not built (scripts/test builds it)' }, async () => {
    const server = await startServer({ builds: ['wasm-nosimd'] });
    const { page, context } = await openPage(browser, server.origin);
    const status = await page.evaluate(() => window.neurolens.engineStatus);
    assert.deepEqual([status.build, status.simd, status.threads], ['/wasm-nosimd/neurolens.js', false, 1]);
    assert.match(await page.textContent('#status'), /engine: WebAssembly, 1 thread — threaded and SIMD builds not available yet$/);
    assertAgrees(await classifyInPage(page));
    await context.close();
    await server.stop();
  });

test('a page that is not cross-origin isolated runs the SIMD build on one thread and says why',
  { skip: !builtSimd && `${path.relative(ROOT, SINGLE_DIR)} is not built` }, async () => {
    const server = await startServer({ isolated: false });
    const { page, context } = await openPage(browser, server.origin);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    const status = await page.evaluate(() => window.neurolens.engineStatus);
    assert.deepEqual([status.build, status.threads, status.why], ['/wasm/neurolens.js', 1, 'not cross-origin isolated']);
    assert.match(await page.textContent('#status'), /engine: WebAssembly SIMD, 1 thread — not cross-origin isolated$/);
    await screenshot(page, 'engine-not-isolated');
    await context.close();
    await server.stop();
  });
