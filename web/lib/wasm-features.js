// Which build of the engine this browser can run: the WebAssembly SIMD128 build where the
// browser validates a SIMD instruction, the plain-wasm build otherwise.

// (module (func (result v128) i32.const 0 i8x16.splat))
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b,       // type: () -> v128
  0x03, 0x02, 0x01, 0x00,                         // one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b, // body
]);

export function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

// The most capable pthread pool size the threaded build is linked for (PTHREAD_POOL_SIZE).
export const MAX_THREADS = 4;

// The engine builds to try, best first. scripts/serve maps /wasm/ to build/wasm (SIMD),
// /wasm-threads/ to build/wasm-threads (SIMD + pthreads: needs a cross-origin isolated page,
// i.e. SharedArrayBuffer) and /wasm-nosimd/ to build/wasm-nosimd (plain wasm).
export function wasmVariants() {
  const simd = simdSupported();
  const url = (dir) => new URL(`../${dir}/neurolens.js`, import.meta.url).href;
  const cores = Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency ?? 1, MAX_THREADS));
  const variants = [];
  if (simd && globalThis.crossOriginIsolated && cores > 1) variants.push({ simd, threads: cores, url: url('wasm-threads') });
  if (simd) variants.push({ simd, threads: 1, url: url('wasm') });
  variants.push({ simd: false, threads: 1, url: url('wasm-nosimd') });  // runs everywhere: the last resort
  return variants;
}
