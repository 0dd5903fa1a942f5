// Reads a NeuroLens model file (safetensors: u64 header length, JSON header, F32 or F16 data) into
// {architecture, classes, tensors: {name: {shape, data: Float32Array}}}, for the TensorFlow.js
// worker.

// IEEE binary16 -> float32, exact (little-endian host, as every browser is).
function halfToFloat(halves) {
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; ++i) {
    const h = halves[i], sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent === 0) out[i] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) out[i] = mantissa ? NaN : sign * Infinity;
    else out[i] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

export function readModelFile(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) throw new Error(`model file: header length ${headerLength} exceeds the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const meta = header.__metadata__ ?? {};
  delete header.__metadata__;
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    const [begin, end] = t.data_offsets;
    const raw = bytes.slice(base + begin, base + end);
    if (t.dtype === 'F32') tensors[name] = { shape: t.shape, data: new Float32Array(raw.buffer) };
    else if (t.dtype === 'F16') tensors[name] = { shape: t.shape, data: halfToFloat(new Uint16Array(raw.buffer)) };
    else throw new Error(`model file: tensor '${name}' is ${t.dtype}, not F32 or F16`);
  }
  return { architecture: JSON.parse(meta.architecture), classes: JSON.parse(meta.classes), tensors };
}
