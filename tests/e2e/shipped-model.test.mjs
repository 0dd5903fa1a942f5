// The shipped model (model/neurolens.safetensors, served as /model/ by scripts/serve) in the
// page: it loads, classifies with Grad-CAM, feeds the Learn view, and fine-tunes (last layers)
// in the browser; an image of random pixels gets "This does not look like a brain MRI slice" from
// the model's outlier detector, and so do the slices of a noise volume in the scan viewer.
// Skipped only while the trained model has not been committed yet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage, foreignRequests, screenshot, chooseFiles, settledCards } from './helpers/harness.mjs';
import { encodePng, rng, syntheticShape, syntheticSlice } from './helpers/png.mjs';

const MODEL_DIR = path.join(ROOT, 'model');
const present = fs.existsSync(path.join(MODEL_DIR, 'neurolens.safetensors'));

let server, browser, setDir;
before(async () => {
  if (!present) return;
  server = await startServer({ modelDir: MODEL_DIR });
  browser = await launchBrowser();
  setDir = path.join(ROOT, `build/e2e/shipped-${process.pid}/scans`);
  ['glioma', 'meningioma', 'notumor', 'pituitary'].forEach((name, label) => {
    fs.mkdirSync(path.join(setDir, name), { recursive: true });
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(setDir, name, `${i}.png`), encodePng(96, 96, syntheticShape(label, 96, i)));
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (setDir) fs.rmSync(path.dirname(setDir), { recursive: true, force: true });
});

test('the shipped model classifies, explains and fine-tunes in the browser', { skip: !present && 'model/neurolens.safetensors is not there yet' }, async () => {
  const { page, requests, context } = await openPage(browser, server.origin);
  const info = await page.evaluate(() => window.neurolens.model.info);
  assert.deepEqual(info.classes, ['glioma', 'meningioma', 'notumor', 'pituitary']);
  assert.equal(await page.$eval('#status', (s) => s.dataset.model), 'shipped');

  await page.check('#gradcam-toggle');
  await chooseFiles(page, '#classify-files', [1, 2, 3].map((seed) => ({
    name: `slice-${seed}.png`, buffer: encodePng(180, 180, syntheticSlice(180, { seed, radius: 0.04 * seed, cx: 0.4 + 0.1 * seed })) })));
  const cards = await settledCards(page, 3, 120000);
  for (const c of cards) assert.equal(c.state, 'done', c.error);
  await page.waitForFunction(() => document.querySelectorAll('#cards canvas.heatmap').length === 3, null, { timeout: 60000 });
  // The shipped model crops each scan to the head: its maps sit over that square, centred on
  // these heads, which fill most of their image.
  assert.equal(info.preprocessing.crop, 'head');
  const placements = await page.$$eval('#cards canvas.heatmap', (all) => all.map((c) => ({
    cropped: c.classList.contains('cropped'), left: parseFloat(c.style.left), width: parseFloat(c.style.width) })));
  for (const p of placements) {
    assert.ok(p.cropped, JSON.stringify(p));
    assert.ok(Math.abs(p.left + p.width / 2 - 50) < 3 && p.width > 85 && p.width < 115, JSON.stringify(p));
  }
  await screenshot(page, 'classify-shipped');

  await page.goto(`${server.origin}/#learn`);
  await page.waitForFunction(() => document.querySelectorAll('#feature-maps canvas').length > 0, null, { timeout: 60000 });
  await screenshot(page, 'learn-shipped');

  await page.goto(`${server.origin}/#finetune`);
  await page.setInputFiles('#finetune-folder', setDir);
  await page.selectOption('#finetune-mode', 'last');
  await page.fill('#finetune-epochs', '2');
  await page.fill('#finetune-batch', '8');
  await page.click('#finetune-start');
  await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('#view-finetune').dataset.finetune),
    null, { timeout: 600000 });
  assert.equal(await page.$eval('#view-finetune', (s) => s.dataset.finetune), 'done', await page.textContent('#finetune-progress-text'));
  assert.match(await page.textContent('#finetune-after'), /%/);
  await screenshot(page, 'finetune-shipped');
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});

test('the shipped model: a noise image does not look like a brain MRI slice', { skip: !present && 'model/neurolens.safetensors is not there yet' }, async () => {
  const { page, requests, errors, context } = await openPage(browser, server.origin);
  const info = await page.evaluate(() => window.neurolens.model.info);
  assert.equal(info.confidence.hasOutlierDetector, true, JSON.stringify(info.confidence));
  assert.ok(info.confidence.temperature > 0 && info.confidence.outlierThreshold > 0, JSON.stringify(info.confidence));

  // Random RGB pixels, dropped anywhere on the page.
  const random = rng(20261214);
  const size = 160;
  const noise = [...encodePng(size, size, Float32Array.from({ length: size * size * 3 }, random), { channels: 3 })];
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'noise.png', { type: 'image/png' }));
    const anywhere = document.querySelector('#privacy');
    anywhere.dispatchEvent(new DragEvent('dragenter', { bubbles: true, dataTransfer: dt }));
    anywhere.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, noise);
  const [card] = await settledCards(page, 1, 120000);
  assert.equal(card.state, 'done', card.error);
  const selector = '#cards .card[data-file="noise.png"]';
  assert.equal(await page.getAttribute(selector, 'data-flag'), 'ood');
  const lead = page.locator(`${selector} .card-body > :nth-child(2)`);
  assert.match(await lead.innerText(), /This does not look like a brain MRI slice/);
  assert.match(await lead.innerText(), /trained on brain MRI slices/);
  // No class in sight until the probabilities are asked for.
  assert.equal(await page.locator(`${selector} .predicted`).isVisible(), false);
  assert.equal(await page.locator(`${selector} .bars`).isVisible(), false);
  await page.click(`${selector} details summary`);
  assert.equal(await page.locator(`${selector} .bars`).isVisible(), true);
  const bars = await page.$$eval(`${selector} .bars li .bar-value`, (all) => all.map((b) => parseFloat(b.textContent)));
  assert.equal(bars.length, info.classes.length);
  assert.ok(Math.abs(bars.reduce((a, b) => a + b, 0) - 100) < 0.5, String(bars));
  assert.match(await page.locator(`${selector} .model-pick`).innerText(), /outlier score \d/);

  // The results table notes it; the CSV says so.
  await page.waitForSelector('table.results tbody tr');
  assert.match(await page.textContent('table.results tbody tr'), /Does not look like brain MRI/);
  const prediction = await page.$eval('table.results tbody tr', (tr) => {
    const column = [...tr.closest('table').querySelectorAll('thead th')].findIndex((th) => th.dataset.key === 'prediction');
    return tr.children[column].textContent;
  });
  assert.match(prediction, /^\((Glioma|Meningioma|No tumor|Pituitary tumor)\)$/, 'the pick is shown in brackets');
  await screenshot(page, 'classify-shipped-noise');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split(/\r\n/).map((line) => line.split(','));
  const column = (name) => csv[0].indexOf(name);
  assert.equal(csv[1][column('out_of_distribution')], 'true');
  assert.ok(Number(csv[1][column('outlier_score')]) > info.confidence.outlierThreshold, csv[1].join(','));

  // The Learn view names the model's confidence settings.
  await page.goto(`${server.origin}/#learn`);
  await page.waitForFunction(() => document.querySelector('#model-confidence')?.textContent, null, { timeout: 60000 });
  assert.match(await page.textContent('#model-confidence'), /temperature of [\d.]+.*outlier detector flags/);
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await context.close();
});

// A NIfTI-1 volume of random bytes (uint8, no orientation: the reader notes the stored order).
function noiseNifti(width, height, slices, seed) {
  const header = Buffer.alloc(352);
  header.writeInt32LE(348, 0);  // sizeof_hdr
  [3, width, height, slices, 1, 1, 1, 1].forEach((d, i) => header.writeInt16LE(d, 40 + 2 * i));  // dim
  header.writeInt16LE(2, 70);   // datatype: unsigned char
  header.writeInt16LE(8, 72);   // bitpix
  [1, 1, 1, 1].forEach((v, i) => header.writeFloatLE(v, 76 + 4 * i));  // pixdim[0..3]
  header.writeFloatLE(352, 108);  // vox_offset
  header.write('n+1\0', 344, 'latin1');  // magic
  const random = rng(seed);
  return Buffer.concat([header, Buffer.from(Array.from({ length: width * height * slices }, () => Math.floor(256 * random())))]);
}

test('the shipped model: a noise volume\'s slices do not look like brain MRI slices in the viewer', { skip: !present && 'model/neurolens.safetensors is not there yet' }, async () => {
  const { page, requests, errors, context } = await openPage(browser, server.origin);
  const slices = 6;
  await chooseFiles(page, '#classify-files', [{ name: 'noise.nii', buffer: noiseNifti(64, 64, slices, 7) }]);
  const viewer = '#scans .scan-viewer[data-file="noise.nii"]';
  await page.waitForSelector(`${viewer}[data-state="done"]`, { timeout: 120000 });
  assert.equal(await page.getAttribute(viewer, 'data-out-of-distribution-slices'), String(slices));
  assert.equal(await page.getAttribute(viewer, 'data-verdict'), 'none');
  const flags = await page.$$eval(`${viewer} .strip-slice`, (cols) => cols.map((c) => c.dataset.flag));
  assert.deepEqual(flags, Array(slices).fill('ood'));
  assert.match(await page.textContent(`${viewer} .scan-outliers`), new RegExp(`${slices} of the ${slices} slices do not look like brain MRI slices`));
  // No class verdict leads when no slice looks like brain MRI.
  assert.equal(await page.textContent(`${viewer} .scan-verdict`), `No verdict: none of the ${slices} slices looks like a brain MRI slice.`);
  assert.doesNotMatch(await page.textContent(`${viewer} .scan-summary`), /Most tumour-like: slice/);
  assert.match(await page.getAttribute(`${viewer} .strip-slice`, 'title'), /does not look like a brain MRI slice/);
  await screenshot(page, 'viewer-shipped-noise');
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await context.close();
});
