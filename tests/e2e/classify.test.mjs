// Classify view, end to end in headless Chromium: images the test makes are classified into
// cards; bad inputs get clear messages on their cards while the page keeps working; Grad-CAM
// overlays; the results table sorts and exports CSV; nothing is requested from other origins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer, launchBrowser, openPage, foreignRequests, screenshot, chooseFiles, settledCards } from './helpers/harness.mjs';
import { encodePng, hugePngHeader, syntheticSlice } from './helpers/png.mjs';
import { flatCmykJpeg } from './helpers/jpeg.mjs';

const READABLE = ['Glioma', 'Meningioma', 'No tumor', 'Pituitary tumor'];

let server, browser;
before(async () => {
  server = await startServer({ builds: ['wasm'] });  // the threaded build: threads.test.mjs
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

// A JPEG made by the browser's own encoder (the test has no JPEG encoder of its own).
async function jpegFromPage(page, width, height) {
  const bytes = await page.evaluate(async ([w, hgt]) => {
    const canvas = new OffscreenCanvas(w, hgt);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#111'; ctx.fillRect(0, 0, w, hgt);
    ctx.fillStyle = '#777'; ctx.beginPath(); ctx.ellipse(w / 2, hgt / 2, w * 0.4, hgt * 0.45, 0, 0, 7); ctx.fill();
    ctx.fillStyle = '#eee'; ctx.beginPath(); ctx.arc(w * 0.6, hgt * 0.4, w * 0.1, 0, 7); ctx.fill();
    const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.9 });
    return [...new Uint8Array(await blob.arrayBuffer())];
  }, [width, height]);
  return Buffer.from(bytes);
}

test('classify: good images get predictions, bad ones clear errors, all on our own origin', async () => {
  const { page, requests, errors } = await openPage(browser, server.origin);
  const info = await page.evaluate(() => window.neurolens.model.info);
  assert.equal(info.classes.length, 4);
  const engine = await page.evaluate(() => window.neurolens.engineStatus);
  assert.deepEqual([engine.build, engine.threads, engine.simd], ['/wasm/neurolens.js', 1, true]);
  // The page is isolated, but only the SIMD build is served (as while scripts/serve builds the rest).
  assert.match(await page.textContent('#status'), /engine: WebAssembly SIMD, 1 thread — threaded build not available yet$/);

  const jpeg = await jpegFromPage(page, 150, 130);
  const good = [
    { name: 'slice-grey.png', mimeType: 'image/png', buffer: encodePng(97, 83, syntheticSlice(97, { radius: 0.1, cx: 0.6 }).slice(0, 97 * 83)) },
    { name: 'slice-plain.png', mimeType: 'image/png', buffer: encodePng(64, 64, syntheticSlice(64, { seed: 3 })) },
    { name: 'slice-16bit.png', mimeType: 'image/png', buffer: encodePng(61, 61, syntheticSlice(61, { seed: 5, radius: 0.15 }), { bitDepth: 16 }) },
    { name: 'slice.jpg', mimeType: 'image/jpeg', buffer: jpeg },
    { name: 'cmyk.jpg', mimeType: 'image/jpeg', buffer: flatCmykJpeg(32, 24, [40, 180, 90, 20]) },
  ];
  const bad = [
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('This is not an MRI slice.\n') },
    { name: 'truncated.jpg', mimeType: 'image/jpeg', buffer: jpeg.subarray(0, Math.floor(jpeg.length / 3)) },
    { name: 'empty.png', mimeType: 'image/png', buffer: Buffer.alloc(0) },
    { name: 'huge.png', mimeType: 'image/png', buffer: hugePngHeader(20000, 20000) },
  ];
  await chooseFiles(page, '#classify-files', [...good, ...bad]);
  const cards = await settledCards(page, good.length + bad.length);
  const byName = Object.fromEntries(cards.map((c) => [c.file, c]));

  for (const { name } of good) {
    const card = byName[name];
    assert.equal(card.state, 'done', `${name}: ${card.error}`);
    assert.ok(info.classes.includes(card.prediction), `${name}: prediction ${card.prediction}`);
    assert.deepEqual(card.bars, READABLE);
    assert.match(card.confidence, /^\d+(\.\d)?%$/);
  }
  const expectations = {
    'notes.txt': /not an image|unrecogni[sz]ed/i,
    'truncated.jpg': /truncated|corrupt/i,
    'empty.png': /empty/i,
    'huge.png': /20000x20000|exceeds|limit/i,
  };
  for (const [name, pattern] of Object.entries(expectations)) {
    const card = byName[name];
    assert.equal(card.state, 'error', `${name} should fail`);
    assert.equal(card.prediction, null);
    assert.match(card.error, pattern, `${name}: ${card.error}`);
  }

  // The page keeps working after the failures.
  await chooseFiles(page, '#classify-files', [
    { name: 'after-errors.png', mimeType: 'image/png', buffer: encodePng(80, 80, syntheticSlice(80, { seed: 9, radius: 0.12 })) }]);
  const after = await settledCards(page, good.length + bad.length + 1);
  assert.equal(after.find((c) => c.file === 'after-errors.png').state, 'done');

  // Grad-CAM: toggling on recomputes the cards with heat-maps, drawn over the thumbnails.
  await page.check('#gradcam-toggle');
  await page.waitForFunction((n) => document.querySelectorAll('#cards .card canvas.heatmap').length === n,
    good.length + 1, { timeout: 60000 });
  const overlayShown = await page.$eval('#cards .card canvas.heatmap', (c) => getComputedStyle(c).display !== 'none');
  assert.ok(overlayShown);
  // This model does not crop: each map covers its whole thumbnail.
  const placements = await page.$$eval('#cards .card canvas.heatmap', (all) => all.map((c) =>
    [c.style.left, c.style.top, c.style.width, c.style.height, c.classList.contains('cropped')].join(' ')));
  for (const p of placements) assert.equal(p, '0% 0% 100% 100% false');

  // Results table: one row per finished card; sortable; CSV export.
  await page.waitForFunction((n) => document.querySelectorAll('table.results tbody tr').length === n,
    cards.length + 1, { timeout: 10000 });
  await page.click('table.results th[data-key="confidence"] button');
  await page.click('table.results th[data-key="confidence"] button');
  const sorted = await page.$$eval('table.results tbody tr', (rows) => rows.map((r) => r.children[3].textContent));
  const numbers = sorted.filter(Boolean).map(parseFloat);
  assert.deepEqual(numbers, [...numbers].sort((a, b) => b - a), 'descending by confidence');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=Export CSV')]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split(/\r\n/);
  assert.equal(csv[0], `file,predicted_class,prediction,confidence,${info.classes.map((c) => `p_${c}`).join(',')},` +
    'uncertain,out_of_distribution,outlier_score,milliseconds,error');
  assert.equal(csv.length, 1 + cards.length + 1);
  assert.ok(csv.some((line) => line.startsWith('empty.png,') && /empty/i.test(line)));
  // The test model stores no confidence settings: never uncertain, no outlier detector.
  const confidenceAt = 4 + info.classes.length;
  for (const line of csv.slice(1).filter((l) => l.startsWith('slice-'))) {
    assert.deepEqual(line.split(',').slice(confidenceAt, confidenceAt + 3), ['false', 'false', ''], line);
  }

  await screenshot(page, 'classify');
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);
  await page.context().close();
});

test('classify: drop anywhere and paste add cards; a crashed engine is restarted with the model', async () => {
  const { page, context } = await openPage(browser, server.origin);
  const png = (seed) => [...encodePng(50, 50, syntheticSlice(50, { seed, radius: 0.1 }))];
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
    const anywhere = document.querySelector('#privacy');
    anywhere.dispatchEvent(new DragEvent('dragenter', { bubbles: true, dataTransfer: dt }));
    anywhere.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, png(1));
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
    document.body.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: dt }));
  }, png(2));
  const cards = await settledCards(page, 2);
  assert.deepEqual(cards.map((c) => [c.file, c.state]), [['dropped.png', 'done'], ['pasted.png', 'done']]);
  assert.equal(await page.isHidden('#drop-overlay'), true);

  // The worker dies: the page restarts it, reloads the model in use, and classifies again.
  const before = await page.evaluate(() => window.neurolens.engine.restarts ?? 0);
  await page.evaluate(() => window.neurolens.engine.worker.dispatchEvent(new ErrorEvent('error', { message: 'simulated crash' })));
  assert.equal(await page.evaluate(() => window.neurolens.engine.restarts), before + 1);
  await chooseFiles(page, '#classify-files', [{ name: 'after-crash.png', buffer: Buffer.from(png(3)) }]);
  const after = await settledCards(page, 3);
  assert.equal(after[2].state, 'done', after[2].error);
  assert.equal(after[2].prediction !== null, true);
  await context.close();
});

test('classify: the privacy line is on the page', async () => {
  const { page } = await openPage(browser, server.origin);
  const text = await page.textContent('#privacy');
  assert.match(text, /never leave this computer/);
  assert.match(text, /not a medical device/);
  await page.context().close();
});
