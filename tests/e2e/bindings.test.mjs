// The Embind API of build/wasm/neurolens.js, under Node: results are copies JS owns, C++
// errors arrive as JS Errors with the C++ message, errors leak neither wasm stack nor heap,
// and a thousand classifications leave the heap where it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers/harness.mjs';
import * as shapes from './helpers/png.mjs';
import { encodePng, hugePngHeader, syntheticSlice } from './helpers/png.mjs';
import { testModelBytes, TEST_CLASSES } from './helpers/test-model.mjs';

const WASM_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_DIR ?? 'build/wasm');

let NL, engine;
before(async () => {
  const { default: createNeuroLens } = await import(path.join(WASM_DIR, 'neurolens.js'));
  NL = await createNeuroLens({ wasmBinary: fs.readFileSync(path.join(WASM_DIR, 'neurolens.wasm')) });
  engine = new NL.Engine();
});
after(() => engine?.delete());

const slice = (seed, radius = 0.12) => encodePng(53, 47, syntheticSlice(53, { seed, radius }).slice(0, 53 * 47));

test('loadModel returns a plain description of the model', () => {
  assert.equal(engine.hasModel(), false);
  assert.throws(() => engine.classify(slice(1), {}), { name: 'Error', message: /no model is loaded/ });
  const info = engine.loadModel(new Uint8Array(testModelBytes()));
  assert.deepEqual(info.classes, TEST_CLASSES);
  assert.deepEqual(info.input, { height: 48, width: 48, channels: 1 });
  assert.equal(info.layers[0].name, 'conv1');
  assert.deepEqual(info.layers[0].outputShape, [1, 48, 48, 8]);
  assert.equal(info.layers[0].params, 8 * 3 * 3 * 1);
  assert.equal(info.layers.at(-1).type, 'softmax');
  const expectedParams = 72 + 4 * 8 + 8 * 9 * 16 + 4 * 16 + 16 * 9 * 16 + 16 + 16 * 4 + 4;
  assert.equal(info.parameterCount, expectedParams);
  assert.ok(info.flops > 0);
  assert.equal(engine.hasModel(), true);
});

test('classify returns probabilities in a Float32Array copy, and a Grad-CAM map on request', () => {
  const r = engine.classify(slice(2), { gradcam: true });
  assert.ok(r.probabilities instanceof Float32Array);
  assert.notEqual(r.probabilities.buffer, NL.HEAPU8.buffer, 'a copy, not a view into the wasm heap');
  assert.equal(r.probabilities.length, 4);
  const sum = r.probabilities.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 1e-5, `probabilities sum to ${sum}`);
  assert.equal(r.classIndex, r.probabilities.indexOf(Math.max(...r.probabilities)));
  assert.equal(r.className, TEST_CLASSES[r.classIndex]);
  assert.ok(r.milliseconds >= 0);
  assert.equal(r.heatmap.layer, 'conv3');  // the last layer with a spatial output
  assert.equal(r.heatmap.width, 12);
  assert.equal(r.heatmap.height, 12);
  assert.notEqual(r.heatmap.data.buffer, NL.HEAPU8.buffer);
  assert.ok(r.heatmap.data.every((v) => v >= 0 && v <= 1));
  const plain = engine.classify(slice(2), undefined);
  assert.equal(plain.heatmap, undefined);
  assert.deepEqual([...plain.probabilities], [...r.probabilities], 'Grad-CAM does not change the prediction');
});

test('classify says which part of the image the model saw; a cropping model sees the head', () => {
  // A 40x40 head pasted at (70, 10) on a black 120x90 image.
  const px = new Float32Array(120 * 90);
  const head = syntheticSlice(40, { seed: 4, radius: 0.1 });
  for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) px[(10 + y) * 120 + 70 + x] = head[y * 40 + x];
  const png = encodePng(120, 90, px);

  const whole = engine.classify(png, {}).region;
  assert.deepEqual(whole, { imageWidth: 120, imageHeight: 90, x: 0, y: 0, width: 120, height: 90 });

  const cropping = new NL.Engine();
  try {
    cropping.loadModel(new Uint8Array(testModelBytes({ crop: 'head' })));
    const r = cropping.classify(png, { gradcam: true });
    const { x, y, width, height } = r.region;
    assert.equal(width, height, 'a square');
    assert.ok(width >= 36 && width <= 50, `side ${width}`);
    assert.ok(x <= 72 && x + width >= 108 && y <= 12 && y + height >= 48, `box ${JSON.stringify(r.region)}`);
    assert.equal(r.heatmap.width, 12);
    // Not what the whole image gives: the model saw another input.
    const unCropped = engine.classify(png, {}).probabilities;
    assert.notDeepEqual([...r.probabilities], [...unCropped]);
  } finally {
    cropping.delete();
  }
});

test('classifyGrey of an image\'s grey levels equals classify of its PNG', () => {
  const w = 53, h = 47;
  const pixels = syntheticSlice(53, { seed: 4, radius: 0.12 }).slice(0, w * h);
  const a = engine.classify(encodePng(w, h, pixels), {});
  // encodePng rounds [0,1] values to 8 bits; the same levels go to classifyGrey.
  const levels = Uint8Array.from(pixels, (v) => Math.round(Math.max(0, Math.min(1, v)) * 255));
  const b = engine.classifyGrey(w, h, levels, {});
  assert.deepEqual(Array.from(b.probabilities), Array.from(a.probabilities));
  assert.equal(b.className, a.className);
  assert.throws(() => engine.classifyGrey(w, h, new Uint8Array(5), {}), { name: 'Error', message: /needs 2491 grey levels, got 5/ });
  assert.throws(() => engine.classifyGrey(0.5, h, new Uint8Array(5), {}), { message: /whole numbers/ });
});

test('summarizeVolume: the command line\'s rule (tumour class on the most slices, at least min(3, n) tumour slices)', () => {
  // TEST_CLASSES: glioma, meningioma, notumor, pituitary
  const slice = (c, p) => { const v = [0, 0, 0, 0].map(() => (1 - p) / 3); v[c] = p; return Float32Array.from(v); };
  let s = engine.summarizeVolume([slice(2, 0.9), slice(2, 0.8), slice(0, 0.7), slice(2, 0.9), slice(0, 0.6)]);
  assert.deepEqual(s.slicesPerClass, [2, 0, 3, 0]);
  assert.equal(s.tumourSlices, 2);
  assert.equal(s.tumourSlicesNeeded, 3);
  assert.equal(s.verdict, 'notumor');  // two tumour slices are not enough
  assert.equal(s.mostTumourLike, 2);
  assert.ok(Math.abs(s.mostTumourLikeScore - (1 - 0.1)) < 1e-6);
  s = engine.summarizeVolume([slice(3, 0.9), slice(0, 0.8), slice(3, 0.7), slice(0, 0.6), [0.1, 0.1, 0.7, 0.1]]);
  assert.equal(s.verdict, 'pituitary');  // 2 vs 2: pituitary's probabilities sum higher (1.6 vs 1.4)
  assert.equal(s.verdictIndex, 3);
  assert.throws(() => engine.summarizeVolume([]), { message: /no slices/ });
  assert.throws(() => engine.summarizeVolume([[0.5, 0.5]]), { message: /slice 0 has 2 probabilities for 4 classes/ });
});

test('featureMaps returns one layer\'s activations', () => {
  const maps = engine.featureMaps(slice(3), 'pool1');
  assert.equal(maps.type, 'max_pool');
  assert.deepEqual([maps.height, maps.width, maps.channels], [24, 24, 8]);
  assert.equal(maps.data.length, 24 * 24 * 8);
  const dense = engine.featureMaps(slice(3), 'fc');
  assert.deepEqual([dense.height, dense.width, dense.channels], [1, 1, 4]);
  assert.throws(() => engine.featureMaps(slice(3), 'nope'), { message: /nope/ });
});

test('C++ errors become JS Errors with the C++ message', () => {
  const cases = [
    [() => engine.classify(new Uint8Array(0), {}), /empty/i],
    [() => engine.classify(new TextEncoder().encode('hello, not an image'), {}), /not an image|unrecogni[sz]ed/i],
    [() => engine.classify(new Uint8Array(hugePngHeader(20000, 20000)), {}), /20000x20000|exceeds|limit/i],
    [() => engine.classify('not bytes', {}), /Uint8Array/],
    [() => engine.classify(slice(4), { gradcam: 'yes' }), /gradcam.*true or false/],
    [() => engine.loadModel(new Uint8Array([1, 2, 3])), /model file|header|bytes/i],
  ];
  for (const [call, message] of cases) assert.throws(call, (e) => e instanceof Error && message.test(e.message));
  // A failed load keeps the previous model.
  assert.deepEqual(engine.info().classes, TEST_CLASSES);
});

test('saveModel round-trips through loadModel', () => {
  const bytes = engine.saveModel();
  assert.ok(bytes instanceof Uint8Array);
  assert.notEqual(bytes.buffer, NL.HEAPU8.buffer);
  const before = engine.classify(slice(5), {});
  const other = new NL.Engine();
  try {
    other.loadModel(bytes);
    assert.deepEqual([...other.classify(slice(5), {}).probabilities], [...before.probabilities]);
  } finally {
    other.delete();
  }
});

test('predict takes a preprocessed input; inferenceModel is the folded model and predicts the same', () => {
  const { height, width, channels } = engine.info().input;
  const input = Float32Array.from({ length: height * width * channels }, (_, i) => Math.sin(i * 0.37) + 0.5 * Math.cos(i * 0.011));
  const p = engine.predict(input);
  assert.ok(p instanceof Float32Array);
  assert.notEqual(p.buffer, NL.HEAPU8.buffer);
  assert.equal(p.length, 4);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.throws(() => engine.predict(new Float32Array(5)), { message: /predict: the input has 5 values but the model takes \[1,48,48,1\] = 2304/ });
  assert.throws(() => engine.predict([1, 2, 3]), { message: /predict: the input must be a Float32Array/ });

  const folded = engine.inferenceModel();
  assert.ok(folded instanceof Uint8Array);
  const other = new NL.Engine();
  try {
    const info = other.loadModel(folded);
    assert.ok(!info.layers.some((l) => l.type === 'batch_norm'), 'batch norm is folded into the convolutions');
    assert.ok(info.layers.length < engine.info().layers.length);
    const q = other.predict(input);
    q.forEach((v, i) => assert.ok(Math.abs(v - p[i]) <= 1e-6, `class ${i}: ${v} vs ${p[i]}`));
  } finally {
    other.delete();
  }
});

test('profile times each layer of the model predict runs, and checks its arguments', () => {
  const { height, width, channels } = engine.info().input;
  const input = Float32Array.from({ length: height * width * channels }, (_, i) => Math.cos(i * 0.13));
  const folded = new NL.Engine();
  try {
    const layers = folded.loadModel(engine.inferenceModel()).layers;
    const profile = engine.profile(input, 3);
    assert.deepEqual(profile.map((l) => [l.name, l.type]), layers.map((l) => [l.name, l.type]), 'one entry per layer of the folded model, in order');
    for (const l of profile) assert.ok(Number.isFinite(l.ms) && l.ms >= 0, JSON.stringify(l));
  } finally {
    folded.delete();
  }
  assert.throws(() => engine.profile(input, 0), { message: /profile: runs must be a whole number in 1..100000/ });
  assert.throws(() => engine.profile(new Float32Array(7), 1), { message: /profile: the input must be a Float32Array of 2304 values/ });
});

test('gemmPeak measures XNNPACK\'s matrix-product speed and checks its arguments', () => {
  const peak = NL.gemmPeak(0.05, 1);
  assert.ok(peak.gflopsPerSecond > 0 && Number.isFinite(peak.gflopsPerSecond));
  assert.ok(peak.m > 0 && peak.k > 0 && peak.n > 0);
  assert.throws(() => NL.gemmPeak(0, 1), { message: /gemmPeak: seconds must be in \(0, 60\]/ });
  assert.throws(() => NL.gemmPeak(0.05, 0), { message: /gemmPeak: threads must be a whole number in 1..64/ });
});

test('errors and repeated calls leak neither stack nor heap', () => {
  const image = slice(6);
  const bad = new Uint8Array(10);
  for (let i = 0; i < 5; i++) {
    engine.classify(image, { gradcam: true });
    assert.throws(() => engine.classify(bad, {}));
  }
  const heap = NL.heapBytesInUse();
  const stack = NL.stackSave();
  for (let i = 0; i < 1000; i++) {
    engine.classify(image, { gradcam: i % 10 === 0 });
    if (i % 4 === 0) assert.throws(() => engine.classify(bad, {}));
  }
  assert.equal(NL.stackSave(), stack, 'the wasm stack pointer is back where it was');
  assert.ok(NL.heapBytesInUse() - heap <= 0, `heap grew by ${NL.heapBytesInUse() - heap} bytes over 1000 calls`);
});

test('Engine(threads) checks its argument; a single-threaded build runs on one thread', () => {
  assert.throws(() => new NL.Engine(0), { message: /threads must be a whole number in 1\.\.64/ });
  assert.throws(() => new NL.Engine(2.5), { message: /threads/ });
  const e = new NL.Engine(2);
  try {
    assert.equal(e.threads(), 1);
  } finally {
    e.delete();
  }
  assert.equal(engine.threads(), 1);
});

test('fine-tuning through the API: progress, cancel, a loadable result', () => {
  const { syntheticShape } = shapes;
  engine.beginFineTune();
  try {
    TEST_CLASSES.forEach((name, label) => {
      for (let i = 0; i < 6; i++) {
        assert.equal(engine.addTrainingImage(`${name}/${i}.png`, name, new Uint8Array(encodePng(48, 48, syntheticShape(label, 48, i)))), '');
      }
    });
    assert.match(engine.addTrainingImage('x.txt', 'glioma', new TextEncoder().encode('text')), /not an image/);
    assert.throws(() => engine.addTrainingImage('y.png', 'tumour', new Uint8Array(encodePng(8, 8, new Float32Array(64)))),
      { message: /unknown class 'tumour'/ });
    assert.throws(() => engine.fineTune({ epochs: 0 }, null), { message: /epochs 0/ });
    assert.throws(() => engine.fineTune({ learningRate: 'fast' }, null), { message: /learningRate.*number/ });

    const events = [];
    const r = engine.fineTune({ epochs: 2, batchSize: 5, trainableLayers: 1, validationFraction: 0.25, augment: false },
      (e) => { events.push(e); return true; });
    assert.equal(r.cancelled, false);
    assert.equal(r.trainImages + r.validationImages, 24);
    assert.equal(r.history.length, 2);
    assert.equal(events.filter((e) => e.kind === 'epoch').length, 2);
    assert.ok(events.filter((e) => e.kind === 'batch').every((e) => e.epochs === 2 && e.loss > 0));
    assert.equal(r.before.confusion.length, 4);
    assert.deepEqual(r.skipped, ['x.txt: not an image (unrecognised format; JPEG, PNG, BMP, GIF and TGA are supported)']);
    const tuned = engine.fineTunedModel();
    const other = new NL.Engine();
    try {
      const info = other.loadModel(tuned);
      assert.equal(info.training.fine_tune.length, 1);
      assert.notDeepEqual([...other.classify(slice(7), {}).probabilities], [...engine.classify(slice(7), {}).probabilities]);
    } finally {
      other.delete();
    }

    let batches = 0;
    const cancelled = engine.fineTune({ epochs: 100, batchSize: 4 }, (e) => (e.kind === 'batch' ? ++batches < 3 : true));
    assert.equal(cancelled.cancelled, true);
    assert.equal(batches, 3);
    assert.throws(() => engine.fineTunedModel(), { message: /no fine-tuned model/ });
  } finally {
    engine.endFineTune();
  }
  assert.throws(() => engine.fineTune({}, null), { message: /beginFineTune/ });
});
