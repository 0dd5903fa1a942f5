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

// The Emscripten ES module to import: scripts/serve maps /wasm/ to build/wasm (SIMD) and
// /wasm-nosimd/ to build/wasm-nosimd.
export function wasmVariant() {
  const simd = simdSupported();
  const dir = simd ? '../wasm/' : '../wasm-nosimd/';
  return { simd, url: new URL(`${dir}neurolens.js`, import.meta.url).href };
}
