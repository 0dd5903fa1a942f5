// A minimal baseline JPEG writer for test inputs the browser's encoder cannot make: a flat
// four-component (Adobe CMYK, APP14 transform 0) image. Every 8x8 block holds only its DC
// coefficient (flat colour); the AC part of each block is a single end-of-block code.

class BitWriter {
  constructor() { this.bytes = []; this.acc = 0; this.n = 0; }
  put(code, length) {
    for (let i = length - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((code >> i) & 1);
      if (++this.n === 8) this.flushByte();
    }
  }
  flushByte() {
    this.bytes.push(this.acc);
    if (this.acc === 0xff) this.bytes.push(0x00);  // byte stuffing
    this.acc = 0; this.n = 0;
  }
  finish() {
    while (this.n !== 0) this.put(1, 1);  // pad with ones
    return this.bytes;
  }
}

// Canonical Huffman codes from the JPEG (counts per length, symbols) description.
function huffmanCodes(counts, symbols) {
  const codes = {};
  let code = 0, k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < counts[length - 1]; i++) codes[symbols[k++]] = { code: code++, length };
    code <<= 1;
  }
  return codes;
}

const DC_COUNTS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];  // the standard luminance DC table
const DC_SYMBOLS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_COUNTS = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];  // just end-of-block
const AC_SYMBOLS = [0x00];

function segment(marker, payload) {
  const length = payload.length + 2;
  return [0xff, marker, length >> 8, length & 0xff, ...payload];
}

// width, height: multiples of 8; cmyk: four values in 0..255 (as stored in the file).
export function flatCmykJpeg(width, height, cmyk) {
  const dc = huffmanCodes(DC_COUNTS, DC_SYMBOLS);
  const ac = huffmanCodes(AC_COUNTS, AC_SYMBOLS);
  const out = [0xff, 0xd8];
  out.push(...segment(0xee, [...Buffer.from('Adobe'), 0, 100, 0, 0, 0, 0, 0]));  // transform 0: CMYK
  out.push(...segment(0xdb, [0x00, ...new Array(64).fill(1)]));                  // quantisation: all 1
  out.push(...segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 4,
    1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]));
  out.push(...segment(0xc4, [0x00, ...DC_COUNTS, ...DC_SYMBOLS]));
  out.push(...segment(0xc4, [0x10, ...AC_COUNTS, ...AC_SYMBOLS]));
  out.push(...segment(0xda, [4, 1, 0x00, 2, 0x00, 3, 0x00, 4, 0x00, 0, 63, 0]));
  const bits = new BitWriter();
  const previous = [0, 0, 0, 0];
  const blocks = (width / 8) * (height / 8);
  for (let b = 0; b < blocks; b++) {
    for (let c = 0; c < 4; c++) {
      const value = 8 * (cmyk[c] - 128);  // the DC coefficient of a flat block
      const diff = value - previous[c];
      previous[c] = value;
      const category = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
      bits.put(dc[category].code, dc[category].length);
      if (category > 0) bits.put(diff >= 0 ? diff : (diff - 1) & ((1 << category) - 1), category);
      bits.put(ac[0].code, ac[0].length);
    }
  }
  out.push(...bits.finish(), 0xff, 0xd9);
  return Buffer.from(out);
}
