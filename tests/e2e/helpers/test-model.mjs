// A small, randomly initialised NeuroLens model written by the test itself (a plain
// safetensors writer: 8-byte little-endian header length, JSON header, F32 data), so the
// end-to-end tests are deterministic and quick whatever model is shipped. It also checks that
// files from another safetensors writer load.
import fs from 'node:fs';
import path from 'node:path';
import { rng } from './png.mjs';

export const TEST_CLASSES = ['glioma', 'meningioma', 'notumor', 'pituitary'];

// conv(8) bn relu pool conv(16) bn relu pool conv(16, fused relu) gap dense(4) softmax
export function testArchitecture(size = 48) {
  return {
    input: { height: size, width: size, channels: 1 },
    layers: [
      { name: 'conv1', type: 'conv2d', filters: 8, kernel: 3, stride: 1, padding: 1, bias: false, activation: 'none' },
      { name: 'bn1', type: 'batch_norm', epsilon: 1e-5, momentum: 0.1 },
      { name: 'relu1', type: 'relu' },
      { name: 'pool1', type: 'max_pool', kernel: 2, stride: 2, padding: 0 },
      { name: 'conv2', type: 'conv2d', filters: 16, kernel: 3, stride: 1, padding: 1, bias: false, activation: 'none' },
      { name: 'bn2', type: 'batch_norm', epsilon: 1e-5, momentum: 0.1 },
      { name: 'relu2', type: 'relu' },
      { name: 'pool2', type: 'max_pool', kernel: 2, stride: 2, padding: 0 },
      { name: 'conv3', type: 'conv2d', filters: 16, kernel: 3, stride: 1, padding: 1, bias: true, activation: 'relu' },
      { name: 'gap', type: 'global_avg_pool' },
      { name: 'fc', type: 'dense', units: 4, bias: true, activation: 'none' },
      { name: 'softmax', type: 'softmax' },
    ],
  };
}

function gaussian(random) {
  const u = Math.max(random(), 1e-12), v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

// Parameter tensors for the architecture above: conv weights [F,K,K,C] and dense [U,In],
// He-normal; biases 0; batch norm gamma 1, beta 0, running mean 0, running variance 1.
function parameters(arch, seed) {
  const random = rng(seed);
  const he = (shape, fanIn) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = gaussian(random) * Math.sqrt(2 / fanIn);
    return { shape, values };
  };
  const filled = (n, v) => ({ shape: [n], values: new Float32Array(n).fill(v) });
  const tensors = {};
  let channels = arch.input.channels;
  for (const layer of arch.layers) {
    if (layer.type === 'conv2d') {
      const k = layer.kernel;
      tensors[`${layer.name}.weight`] = he([layer.filters, k, k, channels], k * k * channels);
      if (layer.bias) tensors[`${layer.name}.bias`] = filled(layer.filters, 0);
      channels = layer.filters;
    } else if (layer.type === 'batch_norm') {
      tensors[`${layer.name}.gamma`] = filled(channels, 1);
      tensors[`${layer.name}.beta`] = filled(channels, 0);
      tensors[`${layer.name}.running_mean`] = filled(channels, 0);
      tensors[`${layer.name}.running_var`] = filled(channels, 1);
    } else if (layer.type === 'dense') {
      tensors[`${layer.name}.weight`] = he([layer.units, channels], channels);
      if (layer.bias) tensors[`${layer.name}.bias`] = filled(layer.units, 0);
      channels = layer.units;
    }
  }
  return tensors;
}

export function encodeSafetensors(tensors, metadata) {
  const header = { __metadata__: metadata };
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const bytes = tensors[name].values.length * 4;
    header[name] = { dtype: 'F32', shape: tensors[name].shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    for (const v of tensors[name].values) { out.writeFloatLE(v, at); at += 4; }
  }
  return out;
}

// crop: 'head' makes a model that crops each image to the head before resizing.
export function testModelBytes({ size = 48, seed = 7, crop } = {}) {
  const arch = testArchitecture(size);
  return encodeSafetensors(parameters(arch, seed), {
    format: 'neurolens/1',
    architecture: JSON.stringify(arch),
    classes: JSON.stringify(TEST_CLASSES),
    preprocessing: JSON.stringify({ mean: 0.3, std: 0.25, ...(crop ? { crop } : {}) }),
    training: JSON.stringify({ note: 'randomly initialised end-to-end test model' }),
  });
}

// Writes <dir>/neurolens.safetensors (the name the page fetches) and returns dir.
export function writeTestModelDir(dir, options) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'neurolens.safetensors'), testModelBytes(options));
  return dir;
}
