// The multi-threaded build (build/wasm-threads: SIMD + pthreads) on the cross-origin isolated
// page: the worker picks it, XNNPACK runs on several threads, and the results agree with the
// single-threaded build (run here under Node) on the same model and image.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage } from './helpers/harness.mjs';
import { encodePng, syntheticSlice } from './helpers/png.mjs';
import { testModelBytes } from './helpers/test-model.mjs';

const THREADS_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_THREADS_DIR ?? 'build/wasm-threads');
const SINGLE_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_DIR ?? 'build/wasm');
const built = fs.existsSync(path.join(THREADS_DIR, 'neurolens.js'));

let server, browser;
before(async () => {
  if (!built) return;
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the isolated page runs the threaded build and agrees with the single-threaded one',
  { skip: !built && `${path.relative(ROOT, THREADS_DIR)} is not built (scripts/test and scripts/serve build it)` }, async () => {
    const image = encodePng(71, 67, syntheticSlice(71, { seed: 12, radius: 0.12 }).slice(0, 71 * 67));
    const { default: createNeuroLens } = await import(path.join(SINGLE_DIR, 'neurolens.js'));
    const NL = await createNeuroLens({ wasmBinary: fs.readFileSync(path.join(SINGLE_DIR, 'neurolens.wasm')) });
    const single = new NL.Engine();
    single.loadModel(new Uint8Array(testModelBytes()));
    const expected = single.classify(new Uint8Array(image), { gradcam: true });
    single.delete();

    const { page, context } = await openPage(browser, server.origin);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    const status = await page.evaluate(() => window.neurolens.engineStatus);
    assert.equal(status.build, '/wasm-threads/neurolens.js', JSON.stringify(status));
    assert.ok(status.threads > 1, `threads: ${status.threads}`);
    assert.match(await page.textContent('#status'), /\d threads/);

    const got = await page.evaluate(async (bytes) => {
      const r = await window.neurolens.engine.request('classify', { bytes: new Uint8Array(bytes), gradcam: true });
      return { probabilities: Array.from(r.probabilities), heatmap: Array.from(r.heatmap.data) };
    }, [...image]);
    got.probabilities.forEach((p, i) => assert.ok(Math.abs(p - expected.probabilities[i]) <= 1e-5, `p[${i}] ${p} vs ${expected.probabilities[i]}`));
    got.heatmap.forEach((v, i) => assert.ok(Math.abs(v - expected.heatmap.data[i]) <= 1e-4, `heatmap[${i}] ${v} vs ${expected.heatmap.data[i]}`));
    await context.close();
  });
