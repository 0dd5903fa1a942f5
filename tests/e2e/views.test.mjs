// Evaluate and Learn views, the heap check and a folder of mixed junk, end to end in
// headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startServer, launchBrowser, openPage, foreignRequests, screenshot, chooseFiles, settledCards } from './helpers/harness.mjs';
import { encodePng, hugePngHeader, syntheticShape, syntheticSlice } from './helpers/png.mjs';
import { TEST_CLASSES } from './helpers/test-model.mjs';
import { groupDigits } from '../../web/lib/format.js';

let server, browser, setDir;
before(async () => {
  setDir = path.join(ROOT, `build/e2e/views-${process.pid}/labelled`);
  TEST_CLASSES.forEach((name, label) => {
    fs.mkdirSync(path.join(setDir, name), { recursive: true });
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(setDir, name, `${i}.png`), encodePng(40, 40, syntheticShape(label, 40, i)));
  });
  // Junk inside a class folder, and a file outside any class folder.
  fs.writeFileSync(path.join(setDir, 'glioma', 'readme.txt'), 'not an image');
  fs.writeFileSync(path.join(setDir, 'glioma', 'broken.png'), encodePng(40, 40, syntheticShape(0, 40, 9)).subarray(0, 60));
  fs.writeFileSync(path.join(setDir, 'stray.png'), encodePng(40, 40, syntheticShape(1, 40, 9)));
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  fs.rmSync(path.dirname(setDir), { recursive: true, force: true });
});

test('evaluate: accuracy, confusion matrix, per-class figures and the misclassified gallery', async () => {
  const { page, requests, context } = await openPage(browser, server.origin);
  // The expected figures, from the engine directly.
  const files = TEST_CLASSES.flatMap((name, label) => [0, 1, 2, 3, 4].map((i) => ({ label,
    bytes: [...fs.readFileSync(path.join(setDir, name, `${i}.png`))] })));
  const predicted = await page.evaluate(async (list) => {
    const out = [];
    for (const f of list) out.push((await window.neurolens.engine.request('classify', { bytes: new Uint8Array(f.bytes) })).classIndex);
    return out;
  }, files);
  const correct = predicted.filter((p, i) => p === files[i].label).length;

  await page.goto(`${server.origin}/#evaluate`);
  await page.setInputFiles('#evaluate-folder', setDir);
  await page.waitForSelector('#evaluate-accuracy', { timeout: 60000 });
  const shown = await page.$eval('#evaluate-accuracy', (el) => Number(el.dataset.accuracy));
  assert.ok(Math.abs(shown - correct / files.length) < 1e-9, `accuracy ${shown} vs ${correct}/${files.length}`);
  // Its 95% Wilson interval, from the score-interval formula written out here.
  const interval = await page.$eval('#evaluate-interval', (el) => ({ low: Number(el.dataset.low),
    high: Number(el.dataset.high), text: el.textContent }));
  const n = files.length, p = correct / n, z = 1.959963984540054;
  const mid = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  assert.ok(Math.abs(interval.low - Math.max(0, mid - half)) < 1e-9, `interval low ${interval.low}`);
  assert.ok(Math.abs(interval.high - Math.min(1, mid + half)) < 1e-9, `interval high ${interval.high}`);
  assert.ok(interval.low <= p && p <= interval.high && interval.low < interval.high, JSON.stringify(interval));
  assert.match(interval.text, /^95% interval \d+\.\d% – \d+\.\d%$/);
  const rows = await page.$$eval('#evaluate-metrics tbody tr', (trs) => trs.map((tr) => tr.dataset.class));
  assert.deepEqual(rows, TEST_CLASSES);
  const support = await page.$$eval('#evaluate-metrics tbody tr td:last-child', (tds) => tds.map((td) => Number(td.textContent)));
  assert.deepEqual(support, [5, 5, 5, 5]);
  const wrong = files.length - correct;
  const gallery = await page.$$eval('#misclassified figure', (figs) => figs.length);
  assert.equal(gallery, wrong);
  const message = await page.textContent('#evaluate-message');
  assert.match(message, /2 could not be read/);
  assert.match(message, /1 file\(s\) outside class folders/);
  const unreadable = await page.$$eval('#evaluate-results li.error', (lis) => lis.map((li) => li.textContent));
  assert.equal(unreadable.length, 2);
  assert.ok(unreadable.some((t) => /readme\.txt: not an image/.test(t)));
  assert.ok(await page.$('#confusion-chart'));
  await screenshot(page, 'evaluate');
  assert.deepEqual(foreignRequests(requests, server.origin), []);
  await context.close();
});

test('parameter counts are grouped in threes without Intl', () => {
  assert.deepEqual([0, 7, 999, 1000, 65536, 1229732, 1234567.5].map(groupDigits),
                   ['0', '7', '999', '1,000', '65,536', '1,229,732', '1,234,567.5']);
});

test('learn: the layer diagram and the feature maps of the current image', async () => {
  const { page, context } = await openPage(browser, server.origin);
  const info = await page.evaluate(() => window.neurolens.model.info);
  assert.match(await page.textContent('#status'), new RegExp(`\\(\\d+ classes, ${groupDigits(info.parameterCount)} parameters\\)`));
  await page.goto(`${server.origin}/#learn`);
  const boxes = await page.$$eval('#layer-diagram li', (lis) => lis.length);
  assert.equal(boxes, info.layers.length + 1);
  await chooseFiles(page, '#learn-file', [{ name: 'slice.png', buffer: encodePng(64, 64, syntheticSlice(64, { radius: 0.1 })) }]);
  const conv = info.layers.find((l) => l.type === 'conv2d');
  await page.waitForFunction((n) => document.querySelectorAll('#feature-maps canvas').length === n, conv.outputShape[3]);
  await page.selectOption('#feature-layer', 'fc');
  await page.waitForSelector('#feature-maps .vector-bars');
  await page.selectOption('#feature-layer', conv.name);
  await page.waitForFunction((n) => document.querySelectorAll('#feature-maps canvas').length === n, conv.outputShape[3]);
  await screenshot(page, 'learn');
  await context.close();
});

test('a folder of mixed junk gets a message per file and the page keeps working', async () => {
  const { page, context } = await openPage(browser, server.origin);
  await chooseFiles(page, '#classify-files', [
    { name: 'a.bin', buffer: Buffer.from([0, 1, 2, 3, 4, 5]) },
    { name: 'b.png', buffer: hugePngHeader(1, 1).subarray(0, 30) },
    { name: 'c.gif', buffer: Buffer.from('GIF89a') },
    { name: 'd.bmp', buffer: Buffer.from('BM') },
    { name: 'e.png', buffer: encodePng(30, 30, syntheticSlice(30, { seed: 2 })) },
  ]);
  const cards = await settledCards(page, 5);
  for (const c of cards.filter((c) => c.file !== 'e.png')) {
    assert.equal(c.state, 'error', c.file);
    assert.ok(c.error.length > 'Could not classify: '.length, `${c.file}: ${c.error}`);
  }
  assert.equal(cards.find((c) => c.file === 'e.png').state, 'done');
  await context.close();
});

test('a thousand classifications leave the wasm heap where it was after the first few', async () => {
  const { page, context } = await openPage(browser, server.origin);
  const bytes = [...encodePng(57, 61, syntheticSlice(61, { seed: 4, radius: 0.1 }).slice(0, 57 * 61))];
  const result = await page.evaluate(async (data) => {
    const engine = window.neurolens.engine;
    const classify = (gradcam) => engine.request('classify', { bytes: new Uint8Array(data), gradcam });
    for (let i = 0; i < 10; i++) await classify(i % 2 === 0);
    await engine.request('classify', { bytes: new Uint8Array(5) }).catch(() => {});
    const first = await engine.request('status');
    for (let i = 0; i < 1000; i++) {
      await classify(i % 10 === 0);
      if (i % 50 === 0) await engine.request('classify', { bytes: new Uint8Array(5) }).catch(() => {});
    }
    const last = await engine.request('status');
    return { first, last };
  }, bytes);
  assert.equal(result.last.heapBytesInUse, result.first.heapBytesInUse,
    `heap in use went from ${result.first.heapBytesInUse} to ${result.last.heapBytesInUse} bytes`);
  assert.equal(result.last.wasmMemoryBytes, result.first.wasmMemoryBytes);
  await context.close();
});

test('fine-tune: loose images can be given a class', async () => {
  const { page, context } = await openPage(browser, server.origin);
  await page.goto(`${server.origin}/#finetune`);
  await chooseFiles(page, '#finetune-files', [0, 1, 2].map((i) => ({ name: `loose-${i}.png`, buffer: encodePng(40, 40, syntheticShape(2, 40, i)) })));
  await page.waitForSelector('#finetune-assign-class');
  assert.match(await page.textContent('#finetune-assign'), /3 image\(s\) are not in a class folder/);
  await page.selectOption('#finetune-assign-class', 'notumor');
  await page.click('#finetune-assign-button');
  const counts = await page.$$eval('#finetune-counts tbody tr', (rows) => rows.map((r) => [r.dataset.class, Number(r.lastChild.textContent)]));
  assert.deepEqual(counts, [['glioma', 0], ['meningioma', 0], ['notumor', 3], ['pituitary', 0]]);
  assert.equal(await page.$('#finetune-assign-class'), null);
  assert.equal(await page.isEnabled('#finetune-start'), true);
  await context.close();
});

test('result card: uncertain, out-of-distribution and plain results from made-up results', async () => {
  const { page, context } = await openPage(browser, server.origin);
  const shown = await page.evaluate(async () => {
    const { createCard, showResult } = await import('/views/result-card.js');
    const { ResultsTable } = await import('/views/results-table.js');
    const classes = ['glioma', 'meningioma', 'notumor', 'pituitary'];
    const result = (probabilities, flags) => ({ probabilities: new Float32Array(probabilities), classes, milliseconds: 3.25,
      classIndex: probabilities.indexOf(Math.max(...probabilities)), uncertain: false, outOfDistribution: false, ...flags,
      className: classes[probabilities.indexOf(Math.max(...probabilities))],
      region: { x: 0, y: 0, width: 10, height: 10, imageWidth: 10, imageHeight: 10 } });
    const cards = {
      uncertain: result([0.12, 0.52, 0.05, 0.31], { uncertain: true, outlierScore: 12.5 }),
      ood: result([0.8, 0.1, 0.05, 0.05], { outOfDistribution: true, outlierScore: 4321.123456 }),
      oodAndUncertain: result([0.4, 0.3, 0.2, 0.1], { outOfDistribution: true, uncertain: true, outlierScore: 999 }),
      plain: result([0.05, 0.05, 0.85, 0.05], {}),
    };
    const grid = document.createElement('div');
    grid.className = 'cards';
    document.querySelector('main').prepend(grid);
    const out = {};
    const all = [];
    for (const [name, r] of Object.entries(cards)) {
      const card = createCard(`${name}.png`, null);
      card.order = all.length + 1;
      grid.append(card.root);
      showResult(card, r);
      all.push(card);
      const root = card.root;
      const visible = (sel) => [...root.querySelectorAll(sel)].filter((el) => el.checkVisibility()).map((el) => el.textContent);
      out[name] = {
        flag: root.dataset.flag ?? null, prediction: root.dataset.prediction,
        text: root.querySelector('.card-body').innerText,
        firstLine: root.querySelector('.card-body > :nth-child(2)').innerText,
        second: root.querySelector('.second-class')?.textContent ?? null,
        secondConfidence: root.querySelector('.second-confidence')?.textContent ?? null,
        visibleBars: visible('.bars li').length,
        visiblePredicted: visible('.predicted'),
        summary: root.querySelector('details summary')?.textContent ?? null,
      };
      const details = root.querySelector('details');
      if (details) {
        details.querySelector('summary').click();
        out[name].afterOpen = { open: details.open, text: root.querySelector('.card-body').innerText, visibleBars: visible('.bars li').length, visiblePredicted: visible('.predicted') };
      }
    }
    const table = new ResultsTable();
    table.update(all, classes);
    out.csv = table.csv();
    out.notes = [...table.table.querySelectorAll('tbody tr')].map((tr) => tr.children[8].textContent);
    return out;
  });
  await screenshot(page, 'result-card-flags');

  // Uncertain: says so first and names the second class with its probability.
  assert.equal(shown.uncertain.flag, 'uncertain');
  assert.equal(shown.uncertain.prediction, 'meningioma');
  assert.match(shown.uncertain.firstLine, /^Uncertain: look at the second class too$/);
  assert.match(shown.uncertain.text, /Meningioma 52\.0% or Pituitary tumor 31\.0%/);
  assert.equal(shown.uncertain.second, 'Pituitary tumor');
  assert.equal(shown.uncertain.secondConfidence, '31.0%');
  assert.equal(shown.uncertain.visibleBars, 4);
  assert.equal(shown.uncertain.summary, null);

  // Out of distribution (also when uncertain too): leads with the warning, no class in sight
  // until the probabilities are expanded.
  for (const name of ['ood', 'oodAndUncertain']) {
    const c = shown[name];
    assert.equal(c.flag, 'ood', name);
    assert.match(c.firstLine, /^⚠\s*This does not look like a brain MRI slice\s+The model was trained on brain MRI slices/, name);
    assert.doesNotMatch(c.text, /Uncertain:/, name);
    assert.deepEqual(c.visiblePredicted, [], name);
    assert.equal(c.visibleBars, 0, name);
    assert.equal(c.summary, 'Show the probabilities anyway', name);
    assert.equal(c.afterOpen.open, true, name);
    assert.equal(c.afterOpen.visibleBars, 4, name);
    assert.deepEqual(c.afterOpen.visiblePredicted, ['Glioma'], name);
  }
  assert.doesNotMatch(shown.ood.text, /Glioma|outlier score/);
  assert.match(shown.ood.afterOpen.text, /The model’s pick, for what it is worth: Glioma 80\.0% \(outlier score 4321\)/);

  // Plain: unchanged, the class and its probability.
  assert.equal(shown.plain.flag, null);
  assert.equal(shown.plain.firstLine, 'No tumor 85.0%');
  assert.equal(shown.plain.visibleBars, 4);
  assert.equal(shown.plain.summary, null);

  // The results table notes the flags; its CSV carries them.
  assert.deepEqual(shown.notes, ['Uncertain', 'Does not look like brain MRI', 'Does not look like brain MRI', '']);
  const csv = shown.csv.trim().split(/\r\n/).map((line) => line.split(','));
  assert.deepEqual(csv[0].slice(8), ['uncertain', 'out_of_distribution', 'outlier_score', 'milliseconds', 'error']);
  assert.deepEqual(csv.slice(1).map((row) => [row[0], ...row.slice(8, 11)]), [
    ['uncertain.png', 'true', 'false', '12.5'],
    ['ood.png', 'false', 'true', '4321.12'],
    ['oodAndUncertain.png', 'true', 'true', '999'],
    ['plain.png', 'false', 'false', ''],
  ]);
  await context.close();
});
