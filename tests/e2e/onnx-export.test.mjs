// `neurolens export --onnx` against onnxruntime: the exported graph, run by onnxruntime-node
// (npm, CPU), gives the probabilities our engine gives (the wasm build under Node) for the same
// input, for the shipped model and for a small model with every layer type the exporter maps
// (3-channel input, residual add, average pooling with padding, dense on a spatial tensor,
// dropout, batch norm left unfolded with --no-fold). ONNX's own Python checker (Debian's
// python3-onnx, full_check) accepts every file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import ort from 'onnxruntime-node';
import { ROOT } from './helpers/harness.mjs';
import { encodeSafetensors, TEST_CLASSES } from './helpers/test-model.mjs';
import { rng } from './helpers/png.mjs';

const WASM_DIR = path.resolve(ROOT, process.env.NEUROLENS_E2E_WASM_DIR ?? 'build/wasm');
const CLI = path.join(ROOT, 'build/native/neurolens');
let NL, tmp;
before(async () => {
  const { default: createNeuroLens } = await import(path.join(WASM_DIR, 'neurolens.js'));
  NL = await createNeuroLens({ wasmBinary: fs.readFileSync(path.join(WASM_DIR, 'neurolens.wasm')) });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'neurolens-onnx-'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// Every layer type the exporter maps, at odd sizes: 3 x 21 x 19 input.
const ODD_ARCH = {
  input: { height: 21, width: 19, channels: 3 },
  layers: [
    { name: 'c1', type: 'conv2d', filters: 6, kernel: 3, stride: 1, padding: 1, bias: false, activation: 'none' },
    { name: 'bn1', type: 'batch_norm', epsilon: 1e-3, momentum: 0.1 },
    { name: 'r1', type: 'relu' },
    { name: 'c2', type: 'conv2d', filters: 6, kernel: 3, stride: 1, padding: 1, bias: true, activation: 'none' },
    { name: 'sum', type: 'add', inputs: ['c2', 'r1'], activation: 'relu' },
    { name: 'bn2', type: 'batch_norm', epsilon: 1e-5, momentum: 0.1 },
    { name: 'avg', type: 'avg_pool', kernel: 3, stride: 2, padding: 1 },
    { name: 'mp', type: 'max_pool', kernel: 2, stride: 2, padding: 1 },
    { name: 'drop', type: 'dropout', rate: 0.3 },
    { name: 'fc1', type: 'dense', units: 7, bias: true, activation: 'relu' },
    { name: 'fc2', type: 'dense', units: 4, bias: true, activation: 'none' },
    { name: 'softmax', type: 'softmax' },
  ],
};

function oddModelBytes(seed) {
  const random = rng(seed);
  const uniform = (n, scale, offset = 0) => Float32Array.from({ length: n }, () => offset + scale * (random() * 2 - 1));
  const t = (shape, values) => ({ shape, values });
  // Shapes by hand: 21x19 -> avg (k3 s2 p1) 11x10 -> max (k2 s2 p1) 6x6, x 6 channels = 216.
  const tensors = {
    'c1.weight': t([6, 3, 3, 3], uniform(162, 0.4)),
    'bn1.gamma': t([6], uniform(6, 0.3, 1)), 'bn1.beta': t([6], uniform(6, 0.2)),
    'bn1.running_mean': t([6], uniform(6, 0.2)), 'bn1.running_var': t([6], uniform(6, 0.3, 1)),
    'c2.weight': t([6, 3, 3, 6], uniform(324, 0.3)), 'c2.bias': t([6], uniform(6, 0.1)),
    'bn2.gamma': t([6], uniform(6, 0.3, 1)), 'bn2.beta': t([6], uniform(6, 0.2)),
    'bn2.running_mean': t([6], uniform(6, 0.2)), 'bn2.running_var': t([6], uniform(6, 0.3, 1)),
    'fc1.weight': t([7, 216], uniform(7 * 216, 0.1)), 'fc1.bias': t([7], uniform(7, 0.1)),
    'fc2.weight': t([4, 7], uniform(28, 0.5)), 'fc2.bias': t([4], uniform(4, 0.1)),
  };
  return encodeSafetensors(tensors, {
    format: 'neurolens/1', architecture: JSON.stringify(ODD_ARCH), classes: JSON.stringify(TEST_CLASSES),
    preprocessing: JSON.stringify({ mean: 0.3, std: 0.25 }), training: JSON.stringify({ note: 'ONNX export test model' }),
  });
}

function exportOnnx(modelPath, out, extra = []) {
  const r = spawnSync(CLI, ['export', '--model', modelPath, '--onnx', out, ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, `neurolens export failed: ${r.stderr}`);
  const check = spawnSync('/usr/bin/python3', ['-c',
    'import onnx, sys; m = onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(m.opset_import[0].version)', out],
  { encoding: 'utf8' });
  assert.equal(check.status, 0, `ONNX's checker rejects ${out}: ${check.stderr}`);
  assert.ok(Number(check.stdout) >= 13);
}

// NHWC (ours) -> NCHW (ONNX)
function toNchw(x, h, w, c) {
  const out = new Float32Array(x.length);
  for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) for (let k = 0; k < c; k++) out[(k * h + y) * w + i] = x[(y * w + i) * c + k];
  return out;
}

async function compare(modelBytes, onnxPath, inputs) {
  const engine = new NL.Engine();
  try {
    const info = engine.loadModel(new Uint8Array(modelBytes));
    const { height: h, width: w, channels: c } = info.input;
    const session = await ort.InferenceSession.create(onnxPath, { intraOpNumThreads: 1 });
    let worst = 0;
    for (const x of inputs(h, w, c)) {
      const ours = engine.predict(x);
      const theirs = await session.run({ input: new ort.Tensor('float32', toNchw(x, h, w, c), [1, c, h, w]) });
      assert.equal(theirs.probabilities.data.length, ours.length);
      // logits - logsumexp is log(probabilities): the logits agree up to the softmax's shift.
      const logits = Array.from(theirs.logits.data), m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
      for (let k = 0; k < ours.length; k++) {
        worst = Math.max(worst, Math.abs(ours[k] - theirs.probabilities.data[k]));
        assert.ok(Math.abs(Math.log(ours[k]) - (logits[k] - lse)) <= 1e-4 * Math.max(1, Math.abs(logits[k] - lse)),
          `log-probability ${k}: ours ${Math.log(ours[k])}, onnxruntime ${logits[k] - lse}`);
      }
    }
    assert.ok(worst <= 1e-5, `probabilities differ by up to ${worst}`);
    return worst;
  } finally {
    engine.delete();
  }
}

function randomInputs(seed, count) {
  return (h, w, c) => {
    const random = rng(seed);
    return Array.from({ length: count }, () => Float32Array.from({ length: h * w * c }, () => random() * 4 - 2));
  };
}

test('the shipped model exported to ONNX runs in onnxruntime with our probabilities', async () => {
  const modelPath = path.join(ROOT, 'model/neurolens.safetensors');
  const out = path.join(tmp, 'shipped.onnx');
  exportOnnx(modelPath, out);
  await compare(fs.readFileSync(modelPath), out, randomInputs(3, 3));
});

test('every layer type the exporter maps, folded and unfolded, at odd sizes', async () => {
  const bytes = oddModelBytes(11);
  const modelPath = path.join(tmp, 'odd.safetensors');
  fs.writeFileSync(modelPath, bytes);
  for (const [name, extra] of [['folded', []], ['unfolded', ['--no-fold']]]) {
    const out = path.join(tmp, `odd-${name}.onnx`);
    exportOnnx(modelPath, out, extra);
    await compare(bytes, out, randomInputs(5, 4));
  }
});

test('export refuses a missing model and names it', () => {
  const r = spawnSync(CLI, ['export', '--model', path.join(tmp, 'nope.safetensors'), '--onnx', path.join(tmp, 'x.onnx')], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nope\.safetensors/);
  assert.equal(fs.existsSync(path.join(tmp, 'x.onnx')), false);
});
