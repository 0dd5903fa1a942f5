// Benchmark worker for ONNX Runtime Web (wasm backend, SIMD): the shipped model as exported by
// `neurolens export --onnx`, served at /bench-files/neurolens.onnx. ?threads=N is set before the
// first session (onnxruntime-web fixes its thread count at initialisation; every measurement
// gets a fresh worker, so a fresh runtime). Requests as neurolens-worker.js.
import * as ort from '../vendor/ort/ort.wasm.min.mjs';
import { answerRequests } from '../lib/worker-rpc.js';

const threads = Number(new URL(self.location.href).searchParams.get('threads') ?? 1);
ort.env.wasm.wasmPaths = new URL('../vendor/ort/', self.location.href).href;
ort.env.wasm.numThreads = threads;
ort.env.wasm.proxy = false;
let session = null;

const jobs = {
  async load({ onnxBytes }) {
    session = await ort.InferenceSession.create(onnxBytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    // What the runtime says it runs with, after initialisation (it falls back to 1 thread when
    // the page is not cross-origin isolated).
    return { version: ort.env.versions?.web ?? ort.env.versions?.common ?? 'unknown', threads: ort.env.wasm.numThreads,
             simd: ort.env.wasm.simd ?? 'always (1.30 ships SIMD builds only)', crossOriginIsolated: self.crossOriginIsolated,
             inputs: session.inputNames, outputs: session.outputNames };
  },
  // {input: Float32Array NCHW, shape, runs, warmup, warmupMs} -> {probabilities, logits, times}
  async inference({ input, shape, runs, warmup, warmupMs = 0 }) {
    const feeds = { input: new ort.Tensor('float32', input, shape) };
    let out = null;
    for (let i = 0, t0 = performance.now(); i < warmup || performance.now() - t0 < warmupMs; i++) out = await session.run(feeds);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      out = await session.run(feeds);
      times.push(performance.now() - t0);
    }
    return { probabilities: Array.from(out.probabilities.data), logits: Array.from(out.logits.data), times };
  },
};

answerRequests(jobs);
