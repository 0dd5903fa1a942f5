// A small PNG encoder for test images (grey or RGB, 8 or 16 bits), and synthetic MRI-like
// slices: an elliptical "head" with tissue texture and an optional bright blob.
import zlib from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function ihdr(width, height, bitDepth, colourType) {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width, 0);
  b.writeUInt32BE(height, 4);
  b[8] = bitDepth; b[9] = colourType; b[10] = 0; b[11] = 0; b[12] = 0;
  return b;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// pixels: width*height*channels values in [0,1]; channels 1 (grey) or 3 (RGB).
export function encodePng(width, height, pixels, { channels = 1, bitDepth = 8 } = {}) {
  const bytesPerSample = bitDepth / 8;
  const stride = 1 + width * channels * bytesPerSample;
  const raw = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0;  // filter: none
    for (let i = 0; i < width * channels; i++) {
      const v = Math.max(0, Math.min(1, pixels[y * width * channels + i]));
      const at = y * stride + 1 + i * bytesPerSample;
      if (bitDepth === 16) raw.writeUInt16BE(Math.round(v * 65535), at);
      else raw[at] = Math.round(v * 255);
    }
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(width, height, bitDepth, channels === 3 ? 2 : 0)),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

// A valid-looking PNG whose header claims width x height but carries almost no data.
export function hugePngHeader(width, height) {
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr(width, height, 8, 0)),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

// Deterministic pseudo-random numbers for image texture.
export function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

// An MRI-like grey slice: dark background, an elliptical head with noisy tissue, and a
// bright round "lesion" of the given radius at (cx, cy) (fractions of the size) if radius > 0.
export function syntheticSlice(size, { seed = 1, cx = 0.5, cy = 0.5, radius = 0, brightness = 0.95 } = {}) {
  const random = rng(seed);
  const px = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x + 0.5) / size - 0.5, v = (y + 0.5) / size - 0.5;
      const head = (u / 0.42) ** 2 + (v / 0.47) ** 2;
      let g = 0.02 + 0.03 * random();
      if (head < 1) g = 0.35 + 0.15 * Math.cos(9 * u + 5 * v) + 0.1 * random();
      if (head >= 0.85 && head < 1) g = 0.75;  // skull rim
      if (radius > 0) {
        const d = Math.hypot((x + 0.5) / size - cx, (y + 0.5) / size - cy);
        if (d < radius) g = brightness - 0.1 * random();
      }
      px[y * size + x] = g;
    }
  }
  return px;
}

// A four-class synthetic task that survives the fine-tuning augmentation (mirroring, small
// rotations and shifts): 0 a bright disc, 1 a horizontal bar, 2 a vertical bar, 3 a hollow
// square, at a jittered position on a noisy dark background. Grey values in [0,1].
export function syntheticShape(label, size, seed) {
  const random = rng(seed * 7919 + label + 1);
  const px = new Float32Array(size * size);
  const cx = size / 2 + (random() - 0.5) * size / 5, cy = size / 2 + (random() - 0.5) * size / 5;
  const r = size / 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      let on;
      if (label === 0) on = dx * dx + dy * dy < r * r;
      else if (label === 1) on = Math.abs(dy) < size / 10 && Math.abs(dx) < r * 1.4;
      else if (label === 2) on = Math.abs(dx) < size / 10 && Math.abs(dy) < r * 1.4;
      else { const m = Math.max(Math.abs(dx), Math.abs(dy)); on = m < r * 1.1 && m > r * 0.6; }
      px[y * size + x] = Math.min(1, Math.max(0, (on ? 0.8 : 0.1) + (random() - 0.5) * 0.2));
    }
  }
  return px;
}
