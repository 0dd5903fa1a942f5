// The Web Worker that owns the wasm engine. All inference and training run here, so the page
// never blocks. Protocol: the page posts {id, type, payload}; the worker answers
// {id, ok: true, result} or {id, ok: false, error}; long jobs also post
// {id, progress} messages before their answer. Terminating the worker cancels anything.
import { wasmVariants } from './lib/wasm-features.js';

// The first build that loads: multi-threaded where the page is isolated and it was built,
// else single-threaded SIMD, else plain wasm.
async function startEngine() {
  const failures = [];
  for (const variant of wasmVariants()) {
    try {
      const { default: createNeuroLens } = await import(variant.url);
      // Files next to the glue (the .wasm, the pthread worker script) are found relative to it:
      // inside a module worker the 3.1.6 glue cannot work out its own directory.
      const module = await createNeuroLens({ locateFile: (file) => new URL(file, variant.url).href });
      const engine = variant.threads > 1 ? new module.Engine(variant.threads) : new module.Engine();
      return { module, engine, variant: { ...variant, threads: engine.threads() }, failures };
    } catch (error) {
      failures.push(`${variant.url}: ${error.message ?? error}`);
    }
  }
  throw new Error(`no engine build could be loaded (${failures.join('; ')})`);
}
const enginePromise = startEngine();

const jobs = {
  async status() {
    const { module, variant, failures } = await enginePromise;
    return { simd: variant.simd, threads: variant.threads, build: new URL(variant.url).pathname, skipped: failures,
             heapBytesInUse: module.heapBytesInUse(), wasmMemoryBytes: module.HEAPU8.length };
  },
  async loadModel({ bytes }) {
    const { engine } = await enginePromise;
    return engine.loadModel(bytes);
  },
  async info() {
    const { engine } = await enginePromise;
    return engine.info();
  },
  async classify({ bytes, gradcam }) {
    const { engine } = await enginePromise;
    return engine.classify(bytes, { gradcam: Boolean(gradcam) });
  },
  async featureMaps({ bytes, layer }) {
    const { engine } = await enginePromise;
    return engine.featureMaps(bytes, layer);
  },
  async saveModel() {
    const { engine } = await enginePromise;
    return engine.saveModel();
  },
  // payload: {images: [{path, label, bytes}], options, cancelFlag?: Int32Array on a
  // SharedArrayBuffer (set to 1 to stop after the current batch)}. Progress events:
  // {kind: 'prepare', done, total}, then the engine's batch/epoch events.
  async fineTune({ images, options, cancelFlag }, progress) {
    const { engine } = await enginePromise;
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

// Typed arrays in a result are copies the worker owns: hand them over instead of cloning.
function transferables(value, found = []) {
  if (ArrayBuffer.isView(value)) found.push(value.buffer);
  else if (Array.isArray(value)) value.forEach((v) => transferables(v, found));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => transferables(v, found));
  return found;
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  try {
    const job = jobs[type];
    if (!job) throw new Error(`unknown request type '${type}'`);
    const progress = (p) => self.postMessage({ id, progress: p });
    const result = await job(payload ?? {}, progress);
    self.postMessage({ id, ok: true, result }, [...new Set(transferables(result))]);
  } catch (error) {
    // A trap or abort (WebAssembly.RuntimeError) leaves the module unusable: the page restarts us.
    const fatal = error instanceof WebAssembly.RuntimeError;
    self.postMessage({ id, ok: false, fatal, error: error instanceof Error ? error.message : String(error) });
  }
};
