// Benchmark worker for the NeuroLens engine: loads one build (?build=wasm | wasm-threads) and
// answers the page's requests. Runs in a Worker, as the page's engine does, so the timings
// include nothing the app would not pay. The protocol and the loader are the page's own
// (web/lib/, served at /lib/); no fallback to another build here: a figure must be the named
// build's.
import { BUILDS, loadEngine } from '../lib/engine-loader.js';
import { answerRequests } from '../lib/worker-rpc.js';

const name = new URL(self.location.href).searchParams.get('build') ?? 'wasm';
const ready = Object.hasOwn(BUILDS, name) ? loadEngine([BUILDS[name]]).then(async (loaded) => {
  await loaded.threadsReady;  // nothing may start a thread before (engine-loader.js)
  return loaded.module;
})
  : Promise.reject(new Error(`unknown build '${name}' (one of ${Object.keys(BUILDS).join(', ')})`));
ready.catch(() => {});  // reported by the first request
let engine = null;

const jobs = {
  // {modelBytes, threads} -> model info plus the folded inference model (safetensors bytes)
  async load({ modelBytes, threads }) {
    const module = await ready;
    engine?.delete();
    engine = new module.Engine(threads);
    const info = engine.loadModel(modelBytes);
    return { info, threads: engine.threads(), inferenceModel: engine.inferenceModel() };
  },
  // {input: Float32Array, runs, warmup, warmupMs} -> {probabilities, times (ms)}
  async inference({ input, runs, warmup, warmupMs = 0 }) {
    let probabilities = null;
    for (let i = 0, t0 = performance.now(); i < warmup || performance.now() - t0 < warmupMs; i++) probabilities = engine.predict(input);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      probabilities = engine.predict(input);
      times.push(performance.now() - t0);
    }
    return { probabilities, times };
  },
  // {input: Float32Array, runs, warmup, warmupMs} -> [{name, type, ms}]: each layer's median time
  async profile({ input, runs, warmup, warmupMs = 0 }) {
    for (let i = 0, t0 = performance.now(); i < warmup || performance.now() - t0 < warmupMs; i++) engine.predict(input);
    return engine.profile(input, runs);
  },
  async gemmPeak({ seconds, threads }) {
    const module = await ready;
    return module.gemmPeak(seconds, threads);
  },
  // {images: [{label, bytes}], epochs, batchSize, trainableLayers} -> images/s of the last epoch
  // (the first one creates the operators and packs weights once, as a longer session would).
  async fineTune({ images, epochs, batchSize, trainableLayers }) {
    engine.beginFineTune();
    try {
      images.forEach(({ label, bytes }, i) => {
        const reason = engine.addTrainingImage(`synthetic-${i}.png`, label, bytes);
        if (reason) throw new Error(`training image ${i} was refused: ${reason}`);
      });
      const epochSeconds = [];
      const result = engine.fineTune(
        { epochs, batchSize, trainableLayers, validationFraction: 0, augment: false, learningRate: 1e-4, seed: 1 },
        (event) => { if (event.kind === 'epoch') epochSeconds.push(event.seconds); return true; });
      const last = epochSeconds[epochSeconds.length - 1];
      return { trainImages: result.trainImages, epochSeconds, imagesPerSecond: result.trainImages / last };
    } finally {
      engine.endFineTune();
    }
  },
  // A scan as the page reads it: {files: [{name, bytes}]} -> the scan module (fetched from
  // /scans/ as the page's worker does) reads them, then every slice goes through its window and
  // engine.classifyGrey. Times both, in ms.
  async scan({ files }) {
    const url = new URL('../scans/neurolens-scans.js', self.location.href).href;
    const t0 = performance.now();
    const { default: createNeuroLensScans } = await import(url);
    const S = await createNeuroLensScans({ locateFile: (file) => new URL(file, url).href });
    const moduleMs = performance.now() - t0;
    const reader = new S.ScanReader();
    try {
      const t1 = performance.now();
      for (const { name, bytes } of files) reader.add(name, bytes);
      const result = reader.finish();
      const readMs = performance.now() - t1;
      if (result.problems.length) throw new Error(`${result.problems[0].file}: ${result.problems[0].message}`);
      let slices = 0;
      const t2 = performance.now();
      result.volumes.forEach((v, i) => {
        for (let z = 0; z < v.slices; z++, slices++) engine.classifyGrey(v.width, v.height, reader.slice(i, z), {});
      });
      return { slices, volumes: result.volumes.length, moduleMs, readMs, classifyMs: performance.now() - t2 };
    } finally {
      reader.delete();
    }
  },
};

answerRequests(jobs);
