// Reads a NeuroLens model file (safetensors: u64 header length, JSON header, f32 data) into
// {architecture, classes, tensors: {name: {shape, data: Float32Array}}}. A classic script
// (the TensorFlow.js worker loads it with importScripts), defining self.readModelFile.
self.readModelFile = function readModelFile(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) throw new Error(`model file: header length ${headerLength} exceeds the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const meta = header.__metadata__ ?? {};
  delete header.__metadata__;
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (t.dtype !== 'F32') throw new Error(`model file: tensor '${name}' is ${t.dtype}, not F32`);
    const [begin, end] = t.data_offsets;
    tensors[name] = { shape: t.shape, data: new Float32Array(bytes.slice(base + begin, base + end).buffer) };
  }
  return { architecture: JSON.parse(meta.architecture), classes: JSON.parse(meta.classes), tensors };
};
