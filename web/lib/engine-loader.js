// Which build of the wasm engine to run, and loading it; for the page's worker (the best build
// that loads) and the benchmark's worker (one named build). Three builds of the same C++
// engine, each a directory beside this page (scripts/serve.mjs maps them):
//   wasm-threads  SIMD128 + pthreads: needs SharedArrayBuffer, i.e. a cross-origin isolated page
//   wasm          SIMD128, one thread
//   wasm-nosimd   plain wasm, one thread: runs everywhere, the last resort
// scripts/serve answers as soon as the SIMD build exists and builds the others afterwards, so
// a build may be missing (404): the next one is tried, and the page is told why.

export const BUILDS = Object.freeze({
  'wasm-threads': { name: 'wasm-threads', simd: true, label: 'threaded' },
  wasm: { name: 'wasm', simd: true, label: 'SIMD' },
  'wasm-nosimd': { name: 'wasm-nosimd', simd: false, label: 'plain-wasm' },
});

// The most threads the page runs (all but one a pthread worker started with the module: see
// loadEngine).
const MAX_THREADS = 4;

// (module (func (result v128) i32.const 0 i8x16.splat)): valid only where SIMD128 is.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,       // type: () -> v128
  0x03, 0x02, 0x01, 0x00,                         // one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b, // body
]);

function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

// The glue script of a build, as the server maps it (this file is served from /lib/).
export function buildUrl(build) {
  return new URL(`../${build.name}/neurolens.js`, import.meta.url).href;
}

// The .wasm of each build, beside its glue, written out in full: a built site gives the .wasm
// files content-hashed names and rewrites these strings to match (scripts/site.mjs).
const WASM_URLS = {
  'wasm-threads': () => new URL('../wasm-threads/neurolens.wasm', import.meta.url).href,
  wasm: () => new URL('../wasm/neurolens.wasm', import.meta.url).href,
  'wasm-nosimd': () => new URL('../wasm-nosimd/neurolens.wasm', import.meta.url).href,
};

// Fetches and compiles a build's .wasm (streaming: compiled as it arrives, where the server
// says application/wasm): -> a WebAssembly.Module, or null when it cannot (the glue then
// fetches it itself, as it would have anyway).
export async function compileWasm(build) {
  const url = WASM_URLS[build.name]?.();
  if (!url) return null;
  try {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) return null;
    if ((response.headers.get('Content-Type') ?? '').split(';')[0].trim() === 'application/wasm')
      return await WebAssembly.compileStreaming(response);
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch {
    return null;
  }
}

// The .wasm of the best build this browser can run, compiled: -> {name, module} (module null
// when it could not be). The page starts this while its engine worker is still starting, and
// hands the module over (lib/engine-client.js): the worker alone would ask for the .wasm only
// once its own script has arrived and run.
export async function compileBestBuild() {
  const [best] = runnableBuilds().builds;
  return { name: best.name, module: await compileWasm(best) };
}

// The builds this browser can run, best first, each {name, simd, label, threads},
// and why a better one is left out ('' when none is).
export function runnableBuilds() {
  const simd = simdSupported();
  const cores = Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, MAX_THREADS));
  const builds = [];
  let why = '';
  if (!simd) why = 'no WebAssembly SIMD in this browser';
  else if (!globalThis.crossOriginIsolated) why = 'not cross-origin isolated';
  else if (cores < 2) why = 'only one CPU core';
  else builds.push({ ...BUILDS['wasm-threads'], threads: cores });
  if (simd) builds.push({ ...BUILDS.wasm, threads: 1 });
  builds.push({ ...BUILDS['wasm-nosimd'], threads: 1 });
  return { builds, why };
}

// Loads the first of `builds` that starts: {module, build, url, why, threadsReady}, where
// threadsReady settles when threads may start (threadWorkersLoaded) and `why` says why
// the builds before it were not used, after `whyNot` (why others were left out beforehand),
// e.g. "not cross-origin isolated" or "threaded build not available yet". Throws an Error
// with every reason when none starts. wasm: a promise of {name, module} compiled elsewhere
// (compileBestBuild), used for the build of that name instead of compiling its own.
export async function loadEngine(builds, whyNot = '', { wasm = null } = {}) {
  const missing = [], failed = [];
  const why = () => [whyNot,
    missing.length ? `${listed(missing)} build${missing.length > 1 ? 's' : ''} not available yet` : '',
    ...failed].filter(Boolean).join('; ');
  for (const build of builds) {
    const url = buildUrl(build);
    // The .wasm is fetched and compiled while the glue loads: left to itself, the glue would
    // ask for it only once it has arrived and run.
    const given = build === builds[0] && wasm ? wasm.catch(() => null) : Promise.resolve(null);
    const compiled = given.then((w) => (w?.name === build.name && w.module ? w.module : compileWasm(build)));
    try {
      const { default: createNeuroLens } = await import(url);
      const wasmModule = await compiled;
      let instantiated = null;
      const failed = new Promise((resolve, reject) => { instantiated = reject; });
      const module = await Promise.race([failed, createNeuroLens({
        // Files next to the glue (the .wasm, the pthread worker script) are found relative to
        // it: inside a module worker the Emscripten 3.1.6 glue cannot work out its own directory.
        locateFile: (file) => new URL(file, url).href,
        // The threaded build starts its pthread workers before it is ready, each loading the glue
        // and the module: only as many as the engine's thread pool runs beside its caller (N-1
        // for N threads). A build given without `threads` keeps the pool it was linked with.
        ...(build.threads > 1 && { pthreadPoolSize: build.threads - 1 }),
        // The module compiled above, instantiated with the glue's imports (the threaded
        // build hands it on to its pthread workers: receiveInstance's second argument).
        ...(wasmModule && {
          instantiateWasm(imports, receiveInstance) {
            WebAssembly.instantiate(wasmModule, imports).then((instance) => receiveInstance(instance, wasmModule), instantiated);
            return {};
          },
        }),
      })]);
      return { module, build, url, why: why(), threadsReady: threadWorkersLoaded(module) };
    } catch (error) {
      if (await isMissing(url)) missing.push(build.label);
      else failed.push(`${build.label} build failed to start (${error?.message ?? error})`);
    }
  }
  throw new Error(`no engine build could be loaded (${why()})`);
}

// The threaded build is ready before its pthread workers have loaded (PTHREAD_POOL_DELAY_LOAD):
// it may load a model meanwhile, but nothing may start a thread until every worker has loaded,
// since a thread started earlier waits for a message this worker, then blocked, cannot
// receive. -> a promise that settles once they all have (at once for the other builds);
// rejected when they have not after `timeoutMs`.
export function threadWorkersLoaded(module, { timeoutMs = 60000 } = {}) {
  const workers = module.PThread?.unusedWorkers ?? [];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (workers.every((w) => w.loaded)) resolve();
      else if (performance.now() - started > timeoutMs) reject(new Error(`the engine's thread workers did not start within ${timeoutMs / 1000} s`));
      else setTimeout(check, 2);
    };
    check();
  });
}

// "a", "a and b", "a, b and c"
function listed(words) {
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}` : words.join('');
}

// Asked only after a failure, so a page whose best build loads makes no extra requests. The
// glue is enough to ask about: a build directory appears whole (scripts/serve, build-site),
// and a built site's .wasm has a content-hashed name only the glue knows.
async function isMissing(url) {
  return fetch(url, { method: 'HEAD' }).then((r) => r.status === 404, () => false);
}
