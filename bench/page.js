// The benchmark page, driven by scripts/bench.mjs through Playwright: each window.bench.*
// function starts a fresh worker (NeuroLens engine or TensorFlow.js), measures one thing and
// returns plain JSON. Heavy data (model files, the folded model, inputs) stays in the page.
import { WorkerRpc } from '../lib/worker-rpc.js';  // web/lib/, served at /lib/

const MODEL_URL = new URL('../model/neurolens.safetensors', import.meta.url);
let shippedModel = null;  // Uint8Array
let foldedModel = null;   // Uint8Array: the model as NeuroLens classification runs it
let inputShape = null;    // {height, width, channels}

const WORKERS = { neurolens: 'neurolens-worker.js', tfjs: 'tfjs-worker.js', ort: 'ort-worker.js' };

function startWorker(kind, params) {
  const url = new URL(WORKERS[kind], import.meta.url);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
  return new WorkerRpc(new Worker(url, { type: 'module' }));
}

// A fresh worker for each measurement, so that none inherits another's warm state.
async function withWorker(kind, params, job) {
  const worker = startWorker(kind, params);
  try {
    return await job(worker);
  } finally {
    worker.terminate();
  }
}

// The middle of the timings (their mean for an even count); the workers return every run.
function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

async function modelBytes() {
  shippedModel ??= new Uint8Array(await (await fetch(MODEL_URL)).arrayBuffer());
  return shippedModel.slice();
}

// A deterministic, image-like preprocessed input (smooth blobs, roughly zero mean, unit spread).
function benchInput({ height, width, channels }) {
  const x = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++)
    for (let i = 0; i < width; i++)
      for (let c = 0; c < channels; c++)
        x[(y * width + i) * channels + c] = Math.sin(0.11 * i + 0.05 * y) * Math.cos(0.07 * y - 0.03 * i) * 1.5 + 0.2 * Math.sin(0.9 * i * y);
  return x;
}

function base64Bytes(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

window.bench = {
  crossOriginIsolated: () => globalThis.crossOriginIsolated,

  // Every inference measurement: {..., runs, warmup, warmupMs}: timed runs after at least
  // `warmup` untimed ones and at least warmupMs of them. The time matters: V8 first runs wasm
  // from its quick baseline compiler and swaps in optimised code compiled in the background,
  // which on two busy cores can take longer than ten runs; every peer gets the same warm-up.

  // NeuroLens inference on the shipped model: {build: 'wasm' | 'wasm-threads', threads, runs, warmup, warmupMs}
  async neurolensInference({ build, threads, runs, warmup, warmupMs }) {
    return withWorker('neurolens', { build }, async (w) => {
      const loaded = await w.request('load', { modelBytes: await modelBytes(), threads });
      foldedModel ??= loaded.inferenceModel;
      inputShape ??= loaded.info.input;
      const r = await w.request('inference', { input: benchInput(loaded.info.input), runs, warmup, warmupMs });
      return { threads: loaded.threads, flops: loaded.info.flops, input: loaded.info.input, medianMs: median(r.times),
               times: r.times, probabilities: Array.from(r.probabilities) };
    });
  },

  // Where NeuroLens' inference time goes in a build: {build, threads, runs, warmup, warmupMs}
  // -> each layer's median ms (timed inside the forward pass), and then a whole pass's median
  // without the per-layer clock (passMs), to compare the sum with
  async neurolensProfile({ build, threads, runs, warmup, warmupMs }) {
    return withWorker('neurolens', { build }, async (w) => {
      const loaded = await w.request('load', { modelBytes: await modelBytes(), threads });
      const input = benchInput(loaded.info.input);
      const layers = await w.request('profile', { input, runs, warmup, warmupMs });
      const pass = await w.request('inference', { input, runs, warmup: 0 });
      return { threads: loaded.threads, layers, passMs: median(pass.times) };
    });
  },

  // TensorFlow.js inference on the same folded network: {backend, threads, runs, warmup, warmupMs}
  async tfjsInference({ backend, threads, runs, warmup, warmupMs }) {
    if (!foldedModel) throw new Error('run neurolensInference first (it provides the folded model)');
    return withWorker('tfjs', { backend, threads }, async (w) => {
      const info = await w.request('load', { modelBytes: foldedModel.slice() });
      const r = await w.request('inference', { input: benchInput(inputShape), runs, warmup, warmupMs });
      return { ...info, medianMs: median(r.times), times: r.times, probabilities: Array.from(r.probabilities) };
    });
  },

  // ONNX Runtime Web (wasm, SIMD) on the exported shipped model: {threads, runs, warmup,
  // warmupMs}. The input is benchInput's, in NCHW.
  async ortInference({ threads, runs, warmup, warmupMs }) {
    if (!inputShape) throw new Error('run neurolensInference first (it provides the input shape)');
    const onnxBytes = new Uint8Array(await (await fetch('/bench-files/neurolens.onnx')).arrayBuffer());
    const { height, width, channels } = inputShape;
    const nhwc = benchInput(inputShape), nchw = new Float32Array(nhwc.length);
    for (let y = 0; y < height; y++) for (let i = 0; i < width; i++) for (let c = 0; c < channels; c++)
      nchw[(c * height + y) * width + i] = nhwc[(y * width + i) * channels + c];
    return withWorker('ort', { threads }, async (w) => {
      const info = await w.request('load', { onnxBytes });
      const r = await w.request('inference', { input: nchw, shape: [1, channels, height, width], runs, warmup, warmupMs });
      return { ...info, medianMs: median(r.times), times: r.times, probabilities: r.probabilities, logits: r.logits };
    });
  },

  // A scan read and classified in the page's way (scan module + engine, in a worker): {build,
  // threads, urls} -> slices per second for reading, classifying and both.
  async neurolensScan({ build, threads, urls }) {
    const files = await Promise.all(urls.map(async (u) => ({ name: u.split('/').pop(), bytes: new Uint8Array(await (await fetch(u)).arrayBuffer()) })));
    return withWorker('neurolens', { build }, async (w) => {
      const loaded = await w.request('load', { modelBytes: await modelBytes(), threads });
      const r = await w.request('scan', { files });
      return { threads: loaded.threads, ...r, readSlicesPerS: r.slices / (r.readMs / 1000), classifySlicesPerS: r.slices / (r.classifyMs / 1000),
               slicesPerS: r.slices / ((r.readMs + r.classifyMs) / 1000) };
    });
  },

  // The benchmark's input (NHWC), for the peers that run outside this page.
  input: () => {
    if (!inputShape) throw new Error('run neurolensInference first (it provides the input shape)');
    return Array.from(benchInput(inputShape));
  },

  async gemmPeak({ build, threads, seconds }) {
    return withWorker('neurolens', { build }, (w) => w.request('gemmPeak', { seconds, threads }));
  },

  // NeuroLens fine-tuning in the browser: {build, threads, images: [{label, base64}], epochs,
  // batchSize, trainableLayers}
  async neurolensFineTune({ build, threads, images, epochs, batchSize, trainableLayers }) {
    return withWorker('neurolens', { build }, async (w) => {
      const loaded = await w.request('load', { modelBytes: await modelBytes(), threads });
      const decoded = images.map(({ label, base64 }) => ({ label, bytes: base64Bytes(base64) }));
      return { threads: loaded.threads, ...(await w.request('fineTune', { images: decoded, epochs, batchSize, trainableLayers })) };
    });
  },

  // TensorFlow.js training of the same (unfolded) network: {backend, threads, batchSize,
  // trainableLayers, seconds}
  async tfjsFineTune({ backend, threads, batchSize, trainableLayers, seconds }) {
    return withWorker('tfjs', { backend, threads }, async (w) =>
      w.request('fineTune', { modelBytes: await modelBytes(), batchSize, trainableLayers, seconds }));
  },
};
