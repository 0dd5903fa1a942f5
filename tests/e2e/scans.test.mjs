// DICOM and NIfTI on the Classify view, end to end in headless Chromium: a DICOM series folder
// (shuffled file names, a DICOMDIR, identifying attributes) and NIfTI volumes, made at test
// time, get slice viewers (slices by keys, wheel, slider and the strip chart; window/level by
// dragging and presets; per-slice results with their DOM hooks; CSV); single DICOMs get
// ordinary cards; nothing identifying reaches the page or the CSV; a JPEG-only page never
// fetches the scan module; nothing leaves the page's origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, launchBrowser, openPage, foreignRequests, screenshot, chooseFiles, settledCards } from './helpers/harness.mjs';
import { encodePng, syntheticSlice } from './helpers/png.mjs';
import { writeScanFiles, SECRET } from './helpers/scans.mjs';
import { TEST_CLASSES, testModelBytes } from './helpers/test-model.mjs';

const SERIES_SLICES = 9;
const NIFTI_SLICES = 10;
const BIG_SLICES = 150;
const SHOTS = process.env.NEUROLENS_VIEWER_SHOTS ?? os.tmpdir();  // viewer-*.png, to look at

let server, browser, dir, files;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'neurolens-scans-'));
  files = writeScanFiles({
    dir,
    series: { name: 'series', slices: SERIES_SLICES, width: 64, height: 56, description: 'T1 AX phantom',
              tumourFrom: 3, tumourTo: 6, dicomdir: true },
    singles: [{ name: 'single.dcm', width: 80, height: 72, description: 'one slice', tumour: true },
              { name: 'bare-dataset', width: 40, height: 40, description: 'no preamble', part10: false }],
    niftis: [{ name: 'brain.nii.gz', slices: NIFTI_SLICES, width: 48, height: 40, tumourFrom: 4, tumourTo: 7 },
             { name: 'big.nii', slices: BIG_SLICES, width: 64, height: 64, tumourFrom: 60, tumourTo: 90 }],
  });
  server = await startServer({ builds: ['wasm'] });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const scanRequests = (requests) => requests.filter((url) => /neurolens-scans|scan-jobs|views\/scans\.js/.test(url));

// Drops files on the page as a DataTransfer: [{name, bytes}].
async function dropFiles(page, list) {
  await page.evaluate((items) => {
    const dt = new DataTransfer();
    for (const { name, bytes } of items) dt.items.add(new File([new Uint8Array(bytes)], name));
    const target = document.querySelector('#privacy');
    target.dispatchEvent(new DragEvent('dragenter', { bubbles: true, dataTransfer: dt }));
    target.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, list.map(({ name, bytes }) => ({ name, bytes: [...bytes] })));
}

const viewer = (name) => `#scans .scan-viewer[data-file="${name}"]`;

async function waitForViewer(page, name, timeout = 60000) {
  await page.waitForSelector(`${viewer(name)}[data-state="done"]`, { timeout });
}

// Waits until the viewer shows slice z (drawn, and its own result in .slice-result).
async function shown(page, name, z) {
  await page.waitForFunction(([sel, slice]) => {
    const v = document.querySelector(sel);
    return v && v.dataset.slice === String(slice) && v.dataset.shownSlice === String(slice) &&
      v.querySelector('.slice-result').dataset.slice === String(slice);
  }, [viewer(name), z], { timeout: 10000 });
}

test('a JPEG-only page never fetches the scan module', async () => {
  const { page, requests, context } = await openPage(browser, server.origin);
  const jpeg = Buffer.from(await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(90, 80);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#222'; ctx.fillRect(0, 0, 90, 80);
    ctx.fillStyle = '#999'; ctx.beginPath(); ctx.ellipse(45, 40, 35, 36, 0, 0, 7); ctx.fill();
    return [...new Uint8Array(await (await canvas.convertToBlob({ type: 'image/jpeg' })).arrayBuffer())];
  }));
  await chooseFiles(page, '#classify-files', [
    { name: 'slice.jpg', mimeType: 'image/jpeg', buffer: jpeg },
    { name: 'slice.png', mimeType: 'image/png', buffer: encodePng(50, 50, syntheticSlice(50, { seed: 2 })) }]);
  const cards = await settledCards(page, 2);
  assert.deepEqual(cards.map((c) => c.state), ['done', 'done']);
  assert.deepEqual(scanRequests(requests), []);
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});

test('a DICOM series folder and NIfTI volumes get slice viewers', async () => {
  const { page, requests, errors, context } = await openPage(browser, server.origin);
  const classes = await page.evaluate(() => window.neurolens.model.info.classes);
  assert.deepEqual(classes, TEST_CLASSES);

  // The series through the folder picker (with its DICOMDIR), then a NIfTI and a broken DICOM
  // dropped together.
  await page.setInputFiles('#classify-folder', files.series.folder);
  await waitForViewer(page, 'series');
  const broken = fs.readFileSync(files['single.dcm']).subarray(0, 700);
  await dropFiles(page, [{ name: 'brain.nii.gz', bytes: fs.readFileSync(files['brain.nii.gz']) },
                         { name: 'broken.dcm', bytes: broken }]);
  await waitForViewer(page, 'brain.nii.gz');
  assert.equal(await page.$$eval('#cards .card', (c) => c.length), 0, 'no image cards for scans');

  // The series: all its slices, in order, whatever the file names; the DICOMDIR passed over.
  const series = viewer('series');
  assert.equal(await page.getAttribute(series, 'data-slices'), String(SERIES_SLICES));
  const strip = await page.$$eval(`${series} .strip-slice`, (cols) => cols.map((c) => ({ ...c.dataset })));
  assert.equal(strip.length, SERIES_SLICES);
  strip.forEach((c, z) => {
    assert.equal(c.file, 'series');
    assert.equal(c.slice, String(z));
    assert.ok(classes.includes(c.prediction), `slice ${z}: ${c.prediction}`);
  });
  const problems = await page.$$eval('#scans .scan-problems li', (lis) => lis.map((li) => [li.dataset.file, li.textContent]));
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0][0], 'broken.dcm');
  assert.ok(problems[0][1].length > 'broken.dcm: '.length + 5, problems[0][1]);

  // What is shown about the scan: the scan module's description only.
  const about = await page.textContent(`${series} .scan-info`);
  for (const expected of ['MR', 'T1 AX phantom', '64 × 56 × 9 slices', '0.9 mm', '3 mm', '1.2.840.10008.1.2.1']) {
    assert.ok(about.includes(expected), `"${expected}" in ${about}`);
  }

  // Slices: the middle one first; keys, wheel, slider and the strip chart move.
  const middle = Math.floor((SERIES_SLICES - 1) / 2);
  await shown(page, 'series', middle);
  await page.focus(`${series} .viewer-stage`);
  await page.keyboard.press('ArrowRight');
  await shown(page, 'series', middle + 1);
  await page.keyboard.press('ArrowLeft');
  await page.keyboard.press('ArrowLeft');
  await shown(page, 'series', middle - 1);
  await page.keyboard.press('End');
  await shown(page, 'series', SERIES_SLICES - 1);
  await page.keyboard.press('Home');
  await shown(page, 'series', 0);
  const box = await page.locator(`${series} .viewer-stage`).boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, 120);
  await shown(page, 'series', 1);
  await page.$eval(`${series} .slice-slider`, (s) => { s.value = '6'; s.dispatchEvent(new Event('input', { bubbles: true })); });
  await shown(page, 'series', 6);
  await page.click(`${series} .strip-slice[data-slice="2"]`);
  await shown(page, 'series', 2);
  // The slice shown has the same result as its column, and Grad-CAM over it.
  const current = await page.$eval(`${series} .slice-result`, (el) => ({ ...el.dataset }));
  assert.deepEqual(current, { file: 'series', slice: '2', prediction: strip[2].prediction });
  await page.waitForSelector(`${series} .viewer-stage canvas.heatmap`);

  // Window/level: the file's window first; a drag right widens it, down raises the level.
  assert.equal(await page.getAttribute(series, 'data-window-preset'), 'file');
  assert.equal(await page.getAttribute(series, 'data-window'), '800,1600');
  const pixels = () => page.$eval(`${series} canvas.slice-canvas`, (c) => c.toDataURL());
  const before = await pixels();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 60, box.y + box.height / 2 + 40, { steps: 5 });
  await page.mouse.up();
  assert.equal(await page.getAttribute(series, 'data-window-preset'), 'custom');
  await page.waitForFunction((sel) => {
    const v = document.querySelector(sel);
    const [center, width] = v.dataset.window.split(',').map(Number);
    return center > 800 && width < 1600;
  }, series);
  assert.notEqual(await pixels(), before, 'the slice is drawn through the new window');
  assert.equal(await page.getAttribute(`${series} .slice-result`, 'data-prediction'), strip[2].prediction,
    'a window change does not change the classification');
  await page.click(`${series} .window-preset[data-preset="auto"]`);
  assert.equal(await page.getAttribute(series, 'data-window-preset'), 'auto');
  await page.click(`${series} .window-preset[data-preset="file"]`);
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.window === '800,1600', series);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.locator(series).screenshot({ path: path.join(SHOTS, 'viewer-series.png') });

  // The NIfTI volume: no window in the file, so the automatic one.
  const nifti = viewer('brain.nii.gz');
  assert.equal(await page.getAttribute(nifti, 'data-slices'), String(NIFTI_SLICES));
  assert.equal(await page.isDisabled(`${nifti} .window-preset[data-preset="file"]`), true);
  assert.equal(await page.getAttribute(nifti, 'data-window-preset'), 'auto');
  const niftiColumns = await page.$$eval(`${nifti} .strip-slice`, (cols) => cols.map((c) => c.dataset.prediction));
  assert.equal(niftiColumns.length, NIFTI_SLICES);
  assert.ok(niftiColumns.every((p) => classes.includes(p)));
  assert.ok(/NIfTI-1/.test(await page.textContent(`${nifti} .scan-kind`)));
  await page.locator(nifti).screenshot({ path: path.join(SHOTS, 'viewer-nifti.png') });

  // The summary, the CSV (one row per slice) and the most tumour-like slice.
  const counts = await page.$$eval(`${series} .scan-counts li`, (lis) => lis.map((li) => [li.dataset.class, Number(li.dataset.count)]));
  assert.deepEqual(counts.map(([c]) => c), classes);
  assert.equal(counts.reduce((n, [, k]) => n + k, 0), SERIES_SLICES);
  for (const [c, k] of counts) assert.equal(k, strip.filter((s) => s.prediction === c).length, c);
  assert.ok(classes.includes(await page.getAttribute(series, 'data-verdict')));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`${series} .scan-csv`)]);
  assert.equal(download.suggestedFilename(), 'neurolens-series-slices.csv');
  const csvText = fs.readFileSync(await download.path(), 'utf8');
  const csv = csvText.trim().split(/\r\n/).map((line) => line.split(','));
  assert.deepEqual(csv[0], ['file', 'slice', 'slice_file', 'predicted_class', 'prediction', 'confidence', ...classes.map((c) => `p_${c}`),
    'uncertain', 'out_of_distribution', 'outlier_score']);
  assert.equal(csv.length, 1 + SERIES_SLICES);
  csv.slice(1).forEach((row, z) => {
    assert.equal(row[0], 'series');
    assert.equal(row[1], String(z));
    assert.ok(files.series.files.includes(row[2].split('/').pop()), row[2]);
    assert.equal(row[3], strip[z].prediction);
    const p = row.slice(6, 6 + classes.length).map(Number);
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    // The test model stores no confidence settings: never uncertain, no outlier detector.
    assert.deepEqual(row.slice(6 + classes.length), ['false', 'false', '']);
  });
  const notumor = 6 + classes.indexOf('notumor');
  const scores = csv.slice(1).map((row) => 1 - Number(row[notumor]));
  const most = scores.indexOf(Math.max(...scores));
  await page.click(`${series} .most-tumour`);
  await shown(page, 'series', most);
  // The verdict follows the README's rule, worked out here from the CSV: the tumour class
  // predicted on the most slices (ties: larger summed probability) when at least min(3, n)
  // slices are predicted as a tumour, else notumor.
  const predicted = csv.slice(1).map((row) => row[3]);
  const tumourSlices = predicted.filter((c) => c !== 'notumor').length;
  let expectedVerdict = 'notumor';
  if (tumourSlices >= Math.min(3, predicted.length)) {
    const score = (c) => [predicted.filter((p) => p === c).length,
      csv.slice(1).filter((row) => row[3] === c).reduce((sum, row) => sum + Number(row[6 + classes.indexOf(c)]), 0)];
    expectedVerdict = classes.filter((c) => c !== 'notumor' && predicted.includes(c))
      .sort((a, b) => score(b)[0] - score(a)[0] || score(b)[1] - score(a)[1])[0];
  }
  assert.equal(await page.getAttribute(series, 'data-verdict'), expectedVerdict);

  // Nothing identifying anywhere: not in the page, not in the CSV.
  assert.ok(!csvText.includes(SECRET));
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  assert.ok(!html.includes(SECRET), 'no patient data in the DOM');
  await screenshot(page, 'scans');
  await page.screenshot({ path: path.join(SHOTS, 'viewer-page.png'), fullPage: true });

  // The scan module came from this origin, once.
  const scanModule = requests.filter((url) => /neurolens-scans\.(js|wasm)$/.test(url));
  assert.deepEqual(scanModule.map((url) => new URL(url).pathname).sort(), ['/scans/neurolens-scans.js', '/scans/neurolens-scans.wasm']);
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  assert.deepEqual(errors.filter((e) => !/Failed to load resource/.test(e)), []);

  // Clear removes the viewers.
  await page.click('text=Clear');
  await page.waitForFunction(() => document.querySelectorAll('#scans .scan-viewer').length === 0);
  await context.close();
});

test('a single DICOM, with or without its preamble, gets an ordinary result card', async () => {
  const { page, requests, context } = await openPage(browser, server.origin);
  await chooseFiles(page, '#classify-files', [
    { name: 'single.dcm', buffer: fs.readFileSync(files['single.dcm']) },
    { name: 'bare-dataset', buffer: fs.readFileSync(files['bare-dataset']) }]);
  const cards = await settledCards(page, 2);
  const classes = await page.evaluate(() => window.neurolens.model.info.classes);
  for (const card of cards) {
    assert.equal(card.state, 'done', `${card.file}: ${card.error}`);
    assert.ok(classes.includes(card.prediction));
    assert.equal(card.bars.length, classes.length);
  }
  assert.deepEqual(cards.map((c) => c.file).sort(), ['bare-dataset', 'single.dcm']);
  const slices = await page.$$eval('#cards .card', (all) => all.map((c) => c.dataset.slice));
  assert.deepEqual(slices, ['0', '0']);
  assert.equal(await page.$$eval('#cards .card canvas.preview', (c) => c.length), 2, 'the slice is the thumbnail');
  assert.equal(await page.$$eval('#scans .scan-viewer', (v) => v.length), 0);
  await page.check('#gradcam-toggle');
  await page.waitForFunction(() => document.querySelectorAll('#cards .card canvas.heatmap').length === 2, null, { timeout: 30000 });
  // The table is rebuilt at most every 150 ms: wait for both rows rather than race it.
  await page.waitForFunction(() => document.querySelectorAll('table.results tbody tr').length === 2, null, { timeout: 10000 });
  const rows = await page.$$eval('table.results tbody tr', (trs) => trs.map((tr) => tr.dataset.file));
  assert.deepEqual(rows.sort(), ['bare-dataset', 'single.dcm']);
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  assert.ok(!html.includes(SECRET));
  await page.locator('#cards').screenshot({ path: path.join(SHOTS, 'viewer-single-cards.png') });
  assert.equal(scanRequests(requests).length > 0, true);
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});

test('a 150-slice volume is classified in chunks with progress while the page stays responsive', async (t) => {
  const { page, context } = await openPage(browser, server.origin);
  // Watch the progress bar and the page's event loop while the volume is classified.
  await page.evaluate(() => {
    window.__progress = [];
    window.__lag = 0;
    new MutationObserver((records) => {
      for (const r of records) if (r.target.matches?.('progress.scan-progress')) window.__progress.push(r.target.value);
    }).observe(document.getElementById('scans'), { subtree: true, attributes: true, attributeFilter: ['value'] });
    let last = performance.now();
    window.__ticker = setInterval(() => {
      const now = performance.now();
      window.__lag = Math.max(window.__lag, now - last - 10);
      last = now;
    }, 10);
  });
  await page.setInputFiles('#classify-files', files['big.nii']);
  await page.waitForSelector(viewer('big.nii'));
  // Slices can be browsed while the classification runs.
  await page.focus(`${viewer('big.nii')} .viewer-stage`);
  await page.keyboard.press('End');
  await shown(page, 'big.nii', BIG_SLICES - 1);
  await waitForViewer(page, 'big.nii', 120000);
  const { progress, lag } = await page.evaluate(() => { clearInterval(window.__ticker); return { progress: window.__progress, lag: window.__lag }; });
  const distinct = new Set(progress);
  assert.ok(distinct.size >= 5, `progress values seen: ${[...distinct].join(' ')}`);
  assert.equal(Math.max(...progress), BIG_SLICES);
  // A figure, not an assertion (the shared machine's load decides it); that the slices can be
  // browsed while the volume is classified is what is checked above.
  t.diagnostic(`the page's event loop stalled for at most ${lag.toFixed(0)} ms`);
  const predictions = await page.$$eval(`${viewer('big.nii')} .strip-slice[data-prediction]`, (c) => c.length);
  assert.equal(predictions, BIG_SLICES);
  await page.locator(viewer('big.nii')).screenshot({ path: path.join(SHOTS, 'viewer-big.png') });
  await context.close();
});

test('a viewer keeps working after the engine is restarted, and a new model classifies its slices again', async () => {
  const { page, context } = await openPage(browser, server.origin);
  await dropFiles(page, [{ name: 'brain.nii.gz', bytes: fs.readFileSync(files['brain.nii.gz']) }]);
  await waitForViewer(page, 'brain.nii.gz');
  const before = await page.$$eval(`${viewer('brain.nii.gz')} .strip-slice`, (cols) => cols.map((c) => c.dataset.prediction));
  await page.evaluate(() => window.neurolens.engine.worker.dispatchEvent(new ErrorEvent('error', { message: 'simulated crash' })));
  await page.focus(`${viewer('brain.nii.gz')} .viewer-stage`);
  await page.keyboard.press('Home');
  await shown(page, 'brain.nii.gz', 0);
  assert.equal(await page.getAttribute(`${viewer('brain.nii.gz')} .slice-result`, 'data-prediction'), before[0]);

  // Another model: every slice again, with that model's probabilities.
  const titles = () => page.$$eval(`${viewer('brain.nii.gz')} .strip-slice`, (cols) => cols.map((c) => c.title));
  const first = await titles();
  await page.evaluate((bytes) => window.neurolens.useModel(new Uint8Array(bytes), { label: 'another model', persist: false }),
    [...testModelBytes({ seed: 23 })]);
  await waitForViewer(page, 'brain.nii.gz');
  const second = await titles();
  assert.equal(second.length, NIFTI_SLICES);
  assert.ok(second.every((t) => !/not classified/.test(t)));
  assert.notDeepEqual(second, first);
  await context.close();
});
