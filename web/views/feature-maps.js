// Draws a layer's output {height, width, channels, data [H,W,C]} as a grid of small grey
// images, one per channel, each stretched to its own min..max so weak channels stay visible.
// A dense layer's output (1 x 1 x units) is drawn as a row of bars instead.
import { h, clear } from '../lib/dom.js';

const MAX_CHANNELS = 64;

function channelImage(maps, k) {
  const { height, width, channels, data } = maps;
  let lo = Infinity, hi = -Infinity;
  for (let p = 0; p < height * width; ++p) {
    const v = data[p * channels + k];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const canvas = h('canvas', { width, height, class: 'feature-map', title: `channel ${k} (${lo.toFixed(2)} … ${hi.toFixed(2)})` });
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(width, height);
  for (let p = 0; p < height * width; ++p) {
    const g = (data[p * channels + k] - lo) * scale;
    image.data[4 * p] = image.data[4 * p + 1] = image.data[4 * p + 2] = g;
    image.data[4 * p + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return h('figure', {}, canvas, h('figcaption', {}, `#${k}`));
}

function vectorBars(maps) {
  const values = Array.from(maps.data);
  const peak = Math.max(...values.map(Math.abs), 1e-12);
  return h('div', { class: 'vector-bars' }, values.slice(0, 256).map((v, i) =>
    h('span', { class: v < 0 ? 'neg' : '', title: `unit ${i}: ${v.toFixed(4)}`,
                style: { height: `${(100 * Math.abs(v)) / peak}%` } })));
}

export function drawFeatureMaps(container, maps) {
  clear(container);
  if (maps.height === 1 && maps.width === 1) {
    container.append(vectorBars(maps));
    return;
  }
  const shown = Math.min(maps.channels, MAX_CHANNELS);
  for (let k = 0; k < shown; ++k) container.append(channelImage(maps, k));
  if (maps.channels > shown) {
    container.append(h('p', { class: 'hint' }, `Showing the first ${shown} of ${maps.channels} channels.`));
  }
}
