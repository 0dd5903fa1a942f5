// Benchmark worker for TensorFlow.js: the same network as a NeuroLens model file, built from
// that file's architecture and weights. ?backend=wasm|webgl|cpu&threads=N picks the backend
// once per worker (TensorFlow.js initialises a backend once). Requests as neurolens-worker.js.
// A module worker, so it shares the page's protocol; the TensorFlow.js UMD bundles define the
// global `tf` when imported for their side effects, in this order.
import '../vendor/tfjs/tf.min.js';
import '../vendor/tfjs-backend-wasm/tf-backend-wasm.min.js';
import { answerRequests } from '../lib/worker-rpc.js';
import { readModelFile } from './safetensors.js';
/* global tf */

const params = new URL(self.location.href).searchParams;
const backendName = params.get('backend') ?? 'wasm';
const threads = Number(params.get('threads') ?? 1);

const ready = (async () => {
  if (backendName === 'wasm') {
    tf.wasm.setWasmPaths(new URL('../vendor/tfjs-backend-wasm/', self.location.href).href);
    if (threads > 1) tf.wasm.setThreadsCount(threads);
    else tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
  if (!(await tf.setBackend(backendName))) throw new Error(`TensorFlow.js backend '${backendName}' failed to initialise`);
  await tf.ready();
  const wasm = backendName === 'wasm';
  return { backend: tf.getBackend(), threads: wasm ? tf.wasm.getThreadsCount() : 1,
           multithreadedBuild: wasm ? await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT') : false };
})();


function layerInputs(layer, previous) {
  return layer.inputs?.length ? layer.inputs : [previous];
}

// Our conv weight is [O,KH,KW,I] (XNNPACK's OHWI); TensorFlow.js wants [KH,KW,I,O]. Our dense
// weight is [units, in]; TensorFlow.js wants [in, units].
// NeuroLens' flip layer (the mirror image, for flip-averaged models) in the layers API, which
// has none: tf.reverse along the width (NHWC axis 2), whose gradient TensorFlow.js has.
class MirrorImage extends tf.layers.Layer {
  static className = 'MirrorImage';
  call(inputs) { return tf.reverse(Array.isArray(inputs) ? inputs[0] : inputs, 2); }
}

function convFilter(t) { return tf.tidy(() => tf.tensor4d(t.data, t.shape).transpose([1, 2, 3, 0])); }
function denseKernel(t) { return tf.tidy(() => tf.tensor2d(t.data, t.shape).transpose()); }

// Inference on the folded model (what NeuroLens classification runs): fused conv + bias +
// ReLU, explicit symmetric padding as ours, fused dense.
function buildInference({ architecture, tensors }) {
  const w = (layer, name) => tensors[`${layer.name}.${name}`];
  const prepared = new Map();
  for (const l of architecture.layers) {
    if (l.type === 'conv2d') prepared.set(l.name, { filter: convFilter(w(l, 'weight')), bias: w(l, 'bias') && tf.tensor1d(w(l, 'bias').data) });
    else if (l.type === 'dense') prepared.set(l.name, { kernel: denseKernel(w(l, 'weight')), bias: w(l, 'bias') && tf.tensor1d(w(l, 'bias').data) });
    else if (l.type === 'batch_norm')
      prepared.set(l.name, Object.fromEntries(['gamma', 'beta', 'running_mean', 'running_var'].map((p) => [p, tf.tensor1d(w(l, p).data)])));
  }
  const { height, width, channels } = architecture.input;
  return (input) => tf.tidy(() => {
    const out = { input: tf.tensor4d(input, [1, height, width, channels]) };
    let previous = 'input';
    for (const l of architecture.layers) {
      const x = layerInputs(l, previous).map((name) => out[name]);
      const p = prepared.get(l.name);
      const activation = l.activation === 'relu' ? 'relu' : 'linear';
      let y;
      switch (l.type) {
        case 'conv2d': y = tf.fused.conv2d({ x: x[0], filter: p.filter, strides: l.stride, pad: l.padding, bias: p.bias, activation }); break;
        case 'dense': y = tf.fused.matMul({ a: x[0], b: p.kernel, bias: p.bias, activation }); break;
        case 'batch_norm': y = tf.batchNorm(x[0], p.running_mean, p.running_var, p.beta, p.gamma, l.epsilon); break;
        case 'relu': y = tf.relu(x[0]); break;
        case 'add': y = tf.add(x[0], x[1]); if (activation === 'relu') y = tf.relu(y); break;
        case 'max_pool': y = tf.maxPool(x[0], l.kernel, l.stride, l.padding || 'valid'); break;
        case 'avg_pool': y = tf.avgPool(x[0], l.kernel, l.stride, l.padding || 'valid'); break;
        case 'global_avg_pool': y = tf.mean(x[0], [1, 2]); break;
        case 'flip': y = tf.reverse(x[0], 2); break;  // the mirror image (NHWC: width is axis 2)
        case 'dropout': y = x[0]; break;
        case 'softmax': y = tf.softmax(x[0]); break;
        default: throw new Error(`layer '${l.name}': type '${l.type}' has no TensorFlow.js counterpart here`);
      }
      out[l.name] = y;
      previous = l.name;
    }
    return out[previous];
  });
}

// The trainable network (batch norm as layers, not folded), with our weights, as a
// tf.LayersModel. Stride-1 "same" convolutions pad symmetrically in TensorFlow.js too; the
// others get an explicit ZeroPadding2D so the arithmetic matches ours.
function buildTrainable({ architecture, tensors }, trainableLayers) {
  const w = (layer, name) => tensors[`${layer.name}.${name}`];
  const { height, width, channels } = architecture.input;
  const out = { input: tf.input({ shape: [height, width, channels] }) };
  const weights = [];  // [layer, [tf.Tensor...]]
  let previous = 'input';
  for (const l of architecture.layers) {
    const x = layerInputs(l, previous).map((name) => out[name]);
    const activation = l.activation === 'relu' ? 'relu' : 'linear';
    let layer;
    let input = x.length === 1 ? x[0] : x;
    switch (l.type) {
      case 'conv2d': {
        const same = l.stride === 1 && 2 * l.padding === l.kernel - 1;
        if (!same && l.padding > 0) input = tf.layers.zeroPadding2d({ padding: l.padding, name: `${l.name}_pad` }).apply(input);
        layer = tf.layers.conv2d({ name: l.name, filters: l.filters, kernelSize: l.kernel, strides: l.stride,
          padding: same ? 'same' : 'valid', useBias: l.bias, activation });
        weights.push([layer, () => [convFilter(w(l, 'weight')), ...(l.bias ? [tf.tensor1d(w(l, 'bias').data)] : [])]]);
        break;
      }
      case 'dense':
        layer = tf.layers.dense({ name: l.name, units: l.units, useBias: l.bias, activation });
        weights.push([layer, () => [denseKernel(w(l, 'weight')), ...(l.bias ? [tf.tensor1d(w(l, 'bias').data)] : [])]]);
        break;
      case 'batch_norm':
        layer = tf.layers.batchNormalization({ name: l.name, axis: -1, epsilon: l.epsilon, momentum: 1 - l.momentum });
        weights.push([layer, () => ['gamma', 'beta', 'running_mean', 'running_var'].map((p) => tf.tensor1d(w(l, p).data))]);
        break;
      case 'relu': layer = tf.layers.reLU({ name: l.name }); break;
      case 'add': layer = tf.layers.add({ name: l.name }); break;
      case 'max_pool': layer = tf.layers.maxPooling2d({ name: l.name, poolSize: l.kernel, strides: l.stride, padding: 'valid' }); break;
      case 'avg_pool': layer = tf.layers.averagePooling2d({ name: l.name, poolSize: l.kernel, strides: l.stride, padding: 'valid' }); break;
      case 'global_avg_pool': layer = tf.layers.globalAveragePooling2d({ name: l.name }); break;
      case 'dropout': layer = tf.layers.dropout({ name: l.name, rate: l.rate }); break;
      case 'flip': layer = new MirrorImage({ name: l.name }); break;
      case 'softmax': layer = tf.layers.softmax({ name: l.name }); break;
      default: throw new Error(`layer '${l.name}': type '${l.type}' has no TensorFlow.js counterpart here`);
    }
    let y = layer.apply(input);
    if (l.type === 'add' && activation === 'relu') y = tf.layers.reLU({ name: `${l.name}_relu` }).apply(y);
    out[l.name] = y;
    previous = l.name;
  }
  const model = tf.model({ inputs: out.input, outputs: out[previous] });
  for (const [layer, make] of weights) {
    const values = make();
    layer.setWeights(values);
    tf.dispose(values);
  }
  // Fine-tune only the last K layers with parameters (as NeuroLens' trainableLayers), 0 = all.
  if (trainableLayers > 0) {
    const withParams = weights.map(([layer]) => layer);
    withParams.forEach((layer, i) => { layer.trainable = i >= withParams.length - trainableLayers; });
  }
  return model;
}

let model = null;
let predict = null;

const jobs = {
  async load({ modelBytes }) {
    const info = await ready;
    model = readModelFile(modelBytes);
    predict = buildInference(model);
    return info;
  },
  async inference({ input, runs, warmup, warmupMs = 0 }) {
    let probabilities = null;
    for (let i = 0, t0 = performance.now(); i < warmup || performance.now() - t0 < warmupMs; i++) { const y = predict(input); probabilities = y.dataSync(); y.dispose(); }
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const y = predict(input);
      probabilities = y.dataSync();
      times.push(performance.now() - t0);
      y.dispose();
    }
    return { probabilities: Float32Array.from(probabilities), times };
  },
  // {modelBytes (unfolded), batchSize, trainableLayers, warmupSteps, minSteps, seconds}
  async fineTune({ modelBytes, batchSize, trainableLayers, warmupSteps = 1, minSteps = 1, seconds = 20 }) {
    const info = await ready;
    const source = readModelFile(modelBytes);
    const net = buildTrainable(source, trainableLayers);
    net.compile({ optimizer: tf.train.adam(1e-4), loss: 'categoricalCrossentropy' });
    const { height, width, channels } = source.architecture.input;
    const classes = source.classes.length;
    const xs = tf.randomNormal([batchSize, height, width, channels], 0, 1, 'float32', 1);
    const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batchSize }, (_, i) => i % classes), 'int32'), classes);
    try {
      for (let i = 0; i < warmupSteps; i++) await net.trainOnBatch(xs, ys);
      let steps = 0;
      const t0 = performance.now();
      while (steps < minSteps || (performance.now() - t0 < seconds * 1000 && steps < 1000)) {
        await net.trainOnBatch(xs, ys);  // returns the loss as a number: the step has finished
        steps++;
      }
      const elapsed = (performance.now() - t0) / 1000;
      return { ...info, steps, batchSize, seconds: elapsed, imagesPerSecond: (steps * batchSize) / elapsed };
    } finally {
      tf.dispose([xs, ys]);
      net.dispose();
    }
  },
};

answerRequests(jobs);
