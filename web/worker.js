// The Web Worker that owns the wasm engine. All inference and training run here, so the page
// never blocks. Requests and replies: lib/worker-rpc.js (long jobs also report progress;
// terminating the worker cancels anything).
import { runnableBuilds, loadEngine } from './lib/engine-loader.js';
import { answerRequests } from './lib/worker-rpc.js';

// The page hands over the best build's .wasm, compiled while this worker was starting: its
// first request, 'wasm' ({build, module}; module null when the page could not compile it).
let handOver;
const handedOver = new Promise((resolve) => { handOver = resolve; });

// The best build that loads: multi-threaded where the page is isolated and it was built, else
// single-threaded SIMD, else plain wasm.
async function startEngine() {
  const { builds, why } = runnableBuilds();
  const loaded = await loadEngine(builds, why, { wasm: handedOver });
  return { ...loaded, engine: new loaded.module.Engine(loaded.build.threads) };
}
const enginePromise = startEngine();
// The engine once it may start threads (its thread workers have loaded: engine-loader.js).
// Loading a model runs nothing in parallel, so it goes ahead while they load; everything else
// waits for this.
const engineWithThreads = enginePromise.then(async (loaded) => {
  await loaded.threadsReady;
  return loaded;
});

// A model's first classification creates its XNNPACK operators (packing the weights),
// allocates its activations and runs code the browser has so far compiled only with its
// baseline compiler: several times a later one. The worker classifies a made-up slice (a grey
// disc on black, through the same cropping and resizing as a real one) right after a model is
// loaded, once its reply is on its way and the thread workers have loaded, while the user is
// still choosing an image; a request that arrives meanwhile waits for it to finish.
const WARM_UP_SIDE = 192;
const warmUpSlice = (() => {
  const n = WARM_UP_SIDE, levels = new Uint8Array(n * n), r2 = (0.4 * n) ** 2;
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) levels[y * n + x] = (x - n / 2) ** 2 + (y - n / 2) ** 2 < r2 ? 100 : 0;
  return levels;
})();
let modelsLoaded = 0;
let warmedUp = Promise.resolve();  // the latest warm-up has run
function warmUpSoon(engine) {
  const loaded = ++modelsLoaded;
  warmedUp = engineWithThreads.then(() => new Promise((resolve) => setTimeout(() => {
    if (loaded === modelsLoaded) {  // else another model came since; it has its own warm-up
      try {
        engine.classifyGrey(WARM_UP_SIDE, WARM_UP_SIDE, warmUpSlice, {});
      } catch (error) {
        console.warn('NeuroLens: warming up the model failed:', error);
      }
    }
    resolve();
  }, 0)), () => {});
}

const jobs = {
  async wasm({ build, module }) {
    handOver({ name: build, module });
    return true;
  },
  async status() {
    const { module, engine, build, url, why } = await enginePromise;
    // why: the reason a better build is not running ('' when none is)
    return { simd: build.simd, threads: engine.threads(), build: new URL(url).pathname, why,
             heapBytesInUse: module.heapBytesInUse(), wasmMemoryBytes: module.HEAPU8.length };
  },
  async loadModel({ bytes }) {
    const { engine } = await enginePromise;
    const info = engine.loadModel(bytes);
    warmUpSoon(engine);
    return info;
  },
  // Answers once the latest model's warm-up has run (EngineClient.idle).
  async idle() {
    await warmedUp;
    return true;
  },
  async info() {
    const { engine } = await engineWithThreads;
    return engine.info();
  },
  async classify({ bytes, gradcam }) {
    const { engine } = await engineWithThreads;
    return engine.classify(bytes, { gradcam: Boolean(gradcam) });
  },
  // A scan slice already through its window: width*height grey levels.
  async classifyGrey({ width, height, levels, gradcam }) {
    const { engine } = await engineWithThreads;
    return engine.classifyGrey(width, height, levels, { gradcam: Boolean(gradcam) });
  },
  // The verdict on a volume from its slices' probabilities (the command line's rule).
  async summarizeVolume({ probabilities }) {
    const { engine } = await engineWithThreads;
    return engine.summarizeVolume(probabilities);
  },
  async featureMaps({ bytes, layer }) {
    const { engine } = await engineWithThreads;
    return engine.featureMaps(bytes, layer);
  },
  async saveModel() {
    const { engine } = await engineWithThreads;
    return engine.saveModel();
  },
  // payload: {images: [{path, label, bytes}], options, cancelFlag?: Int32Array on a
  // SharedArrayBuffer (set to 1 to stop after the current batch)}. Progress events:
  // {kind: 'prepare', done, total}, then the engine's batch/epoch events.
  async fineTune({ images, options, cancelFlag }, progress) {
    const { engine } = await engineWithThreads;
    const cancelled = () => Boolean(cancelFlag && Atomics.load(cancelFlag, 0));
    engine.beginFineTune();
    try {
      const skipped = [];
      images.forEach(({ path, label, bytes }, i) => {
        const reason = engine.addTrainingImage(path, label, bytes);
        if (reason) skipped.push({ path, reason });
        if (i % 8 === 7 || i === images.length - 1) progress({ kind: 'prepare', done: i + 1, total: images.length });
      });
      if (cancelled()) return { cancelled: true, skipped };
      // Called from inside the C++ training loop: it must never throw.
      const onProgress = (event) => {
        try { progress(event); } catch { /* a lost progress message is harmless */ }
        return !cancelled();
      };
      const result = engine.fineTune(options ?? {}, onProgress);
      result.skippedFiles = skipped;
      if (!result.cancelled) result.model = engine.fineTunedModel();
      return result;
    } finally {
      engine.endFineTune();
    }
  },
};

// DICOM and NIfTI (lib/scan-jobs.js): that file and the scan module it loads are fetched only
// when the first scan* request arrives.
let scanJobs = null;
for (const type of ['scanOpen', 'scanSlice', 'scanClassify', 'scanClassifySlice', 'scanClose']) {
  jobs[type] = async (payload, progress) => {
    scanJobs ??= import('./lib/scan-jobs.js').then((m) => m.scanJobs(engineWithThreads));
    return (await scanJobs)[type](payload, progress);
  };
}

answerRequests(jobs);
