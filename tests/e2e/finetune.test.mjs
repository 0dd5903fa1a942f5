// Fine-tune view, end to end in headless Chromium: a synthetic labelled folder fine-tunes the
// model in the worker and measurably changes its predictions; "Use this model" survives a
// reload (IndexedDB); Cancel leaves the model in use untouched; "Back to the shipped model"
// restores the original; nothing is requested from other origins; the main thread never
// blocks for long while training.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage, foreignRequests, screenshot } from './helpers/harness.mjs';
import { encodePng, syntheticShape } from './helpers/png.mjs';
import { TEST_CLASSES } from './helpers/test-model.mjs';

const SIZE = 48;
const PER_CLASS = 12;

let server, browser, setDir;
before(async () => {
  setDir = path.join(ROOT, `build/e2e/finetune-${process.pid}/scans`);
  TEST_CLASSES.forEach((name, label) => {
    fs.mkdirSync(path.join(setDir, name), { recursive: true });
    for (let i = 0; i < PER_CLASS; i++) {
      fs.writeFileSync(path.join(setDir, name, `${name}-${i}.png`), encodePng(SIZE, SIZE, syntheticShape(label, SIZE, i)));
    }
  });
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  fs.rmSync(path.dirname(setDir), { recursive: true, force: true });
});

// Probe images (not in the training folder): their probabilities under the model in use.
const PROBES = TEST_CLASSES.flatMap((_, label) => [100, 101, 102].map((seed) => ({
  label, bytes: [...encodePng(SIZE, SIZE, syntheticShape(label, SIZE, seed))] })));

async function probe(page) {
  return page.evaluate(async (probes) => {
    const out = [];
    for (const p of probes) {
      const r = await window.neurolens.engine.request('classify', { bytes: new Uint8Array(p.bytes) });
      out.push(Array.from(r.probabilities));
    }
    return out;
  }, PROBES);
}

const meanCorrect = (probs) => probs.reduce((sum, p, i) => sum + p[PROBES[i].label], 0) / probs.length;
const accuracy = (probs) => probs.filter((p, i) => p.indexOf(Math.max(...p)) === PROBES[i].label).length / probs.length;
const maxDifference = (a, b) => Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));

async function addFolder(page) {
  await page.goto(`${server.origin}/#finetune`);
  await page.setInputFiles('#finetune-folder', setDir);
  await page.waitForFunction((n) => [...document.querySelectorAll('#finetune-counts tbody td.num')]
    .every((td) => Number(td.textContent) === n), PER_CLASS);
}

test('fine-tune: trains in the worker, changes predictions, persists, cancels, goes back', async (t) => {
  const { page, requests, context } = await openPage(browser, server.origin);
  const original = await probe(page);

  await addFolder(page);
  await page.selectOption('#finetune-mode', 'all');
  await page.fill('#finetune-epochs', '12');
  await page.fill('#finetune-lr', '0.01');
  await page.fill('#finetune-batch', '8');
  await page.uncheck('#finetune-augment');
  // Long main-thread tasks while training (PerformanceObserver 'longtask': over 50 ms).
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => window.longTasks.push(...list.getEntries().map((e) => e.duration)))
      .observe({ type: 'longtask' });
  });
  await page.click('#finetune-start');
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('#view-finetune').dataset.finetune),
    null, { timeout: 300000 });
  assert.equal(await page.$eval('#view-finetune', (s) => s.dataset.finetune), 'done',
    await page.textContent('#finetune-progress-text'));
  const longTasks = await page.evaluate(() => window.longTasks);
  // A figure, not an assertion: how long a main-thread task may take depends on how loaded the
  // shared machine is (training itself runs in the worker, which is what the rest checks).
  t.diagnostic(`main-thread tasks over 50 ms while training: ${longTasks.length}` +
    (longTasks.length ? ` (longest ${Math.max(...longTasks).toFixed(0)} ms)` : ''));
  const beforeText = await page.textContent('#finetune-before');
  const afterText = await page.textContent('#finetune-after');
  assert.match(beforeText, /\d+(\.\d)?%/);
  assert.match(afterText, /\d+(\.\d)?%/);
  await screenshot(page, 'finetune');

  // Not in use until the user says so.
  assert.ok(maxDifference(await probe(page), original) < 1e-6);
  await page.click('#finetune-use');
  await page.waitForSelector('#finetune-in-use');
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'custom');
  const tuned = await probe(page);
  const gain = meanCorrect(tuned) - meanCorrect(original);
  assert.ok(gain > 0.15, `mean probability of the right class went from ${meanCorrect(original).toFixed(3)} to ${meanCorrect(tuned).toFixed(3)}`);
  assert.ok(accuracy(tuned) >= 0.75, `probe accuracy after fine-tuning: ${accuracy(tuned)}`);
  assert.deepEqual(foreignRequests(requests, server.origin), [], 'no request leaves the origin up to the end of a fine-tune');

  // A reload keeps the fine-tuned model (IndexedDB).
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60000 });
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'custom');
  assert.ok(maxDifference(await probe(page), tuned) < 1e-6);

  // Cancel mid-way: the model in use stays the fine-tuned one and keeps working.
  await addFolder(page);
  await page.fill('#finetune-epochs', '200');
  await page.click('#finetune-start');
  await page.waitForFunction(() => /Epoch \d+ of 200/.test(document.querySelector('#finetune-progress-text').textContent),
    null, { timeout: 120000 });
  await page.click('#finetune-cancel');
  await page.waitForFunction(() => document.querySelector('#view-finetune').dataset.finetune === 'cancelled',
    null, { timeout: 60000 });
  assert.match(await page.textContent('#finetune-progress-text'), /Cancelled/);
  assert.ok(maxDifference(await probe(page), tuned) < 1e-6);
  await screenshot(page, 'finetune-cancelled');

  // Download the model in use: the same safetensors format the CLI reads.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#finetune-download-current')]);
  const file = fs.readFileSync(await download.path());
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
  assert.equal(header.__metadata__.format, 'neurolens/1');
  assert.equal(JSON.parse(header.__metadata__.training).fine_tune.length, 1);

  // Back to the shipped model.
  await page.click('#finetune-back');
  await page.waitForFunction(() => document.querySelector('#status').dataset.model === 'shipped');
  assert.ok(maxDifference(await probe(page), original) < 1e-6);

  // Loading the downloaded file makes it the model in use again.
  await page.setInputFiles('#finetune-load-model', { name: 'mine.safetensors', mimeType: 'application/octet-stream', buffer: file });
  await page.waitForFunction(() => document.querySelector('#status').dataset.model === 'custom');
  assert.ok(maxDifference(await probe(page), tuned) < 1e-6);
  await page.setInputFiles('#finetune-load-model', { name: 'junk.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('junk') });
  await page.waitForFunction(() => /Could not load junk\.safetensors/.test(document.querySelector('#finetune-model-bar').textContent));
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'custom', 'a bad file leaves the model in use');
  await page.click('#finetune-back');
  await page.waitForFunction(() => document.querySelector('#status').dataset.model === 'shipped');
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.ready === 'true', null, { timeout: 60000 });
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'shipped');
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});
