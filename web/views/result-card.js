// One image's card on the Classify view: file name, thumbnail (with an optional Grad-CAM
// overlay), predicted class and confidence, a bar per class, inference time, or the error.
// The card's root carries data-state (pending | done | error) and, once classified,
// data-prediction="<class name as in the model>". A single-image DICOM's card shows its slice
// (grey levels through its window: views/scans.js) instead of the file, and carries data-slice="0".
import { h, clear, percent } from '../lib/dom.js';
import { readableClass, classColour } from '../lib/labels.js';

// file: null for a scan slice (views/scans.js draws its preview).
export function createCard(name, file) {
  const thumb = h('div', { class: 'thumb' });
  let url = null;
  if (file) {
    const img = h('img', { alt: `Thumbnail of ${name}`, decoding: 'async' });
    url = URL.createObjectURL(file);
    img.src = url;
    img.addEventListener('error', () => thumb.classList.add('no-preview'), { once: true });
    thumb.append(img);
  }
  const body = h('div', { class: 'card-body' },
    h('h3', { class: 'file-name', title: name }, name),
    h('p', { class: 'verdict' }, 'Classifying…'));
  const root = h('article', { class: 'card', dataset: { state: 'pending', file: name } }, thumb, body);
  return { root, thumb, body, url, name, file, result: null, error: null };
}

export function showResult(card, result) {
  card.result = result;
  card.error = null;
  const { root, body } = card;
  root.dataset.state = 'done';
  root.dataset.prediction = result.className;
  const p = result.probabilities;
  const bars = classBars(result);
  clear(body, 
    h('h3', { class: 'file-name', title: card.name }, card.name),
    h('p', { class: 'verdict' },
      h('strong', { class: 'predicted' }, readableClass(result.className)), ' ',
      h('span', { class: 'confidence' }, percent(p[result.classIndex]))),
    bars,
    h('p', { class: 'timing' }, `${result.milliseconds.toFixed(1)} ms in the browser`));
  if (result.heatmap) drawHeatmap(card, result);
}

// A bar per class: {classes, probabilities, classIndex} -> ul.bars
export function classBars({ classes, probabilities: p, classIndex }) {
  return h('ul', { class: 'bars' }, classes.map((c, i) =>
    h('li', { dataset: { class: c }, class: i === classIndex ? 'best' : '' },
      h('span', { class: 'bar-label' }, readableClass(c)),
      h('span', { class: 'bar' }, h('span', { class: 'bar-fill',
        style: { width: percent(p[i]), background: classColour(c, i) } })),
      h('span', { class: 'bar-value' }, percent(p[i])))));
}

export function showError(card, message) {
  card.result = null;
  card.error = message;
  const { root, body } = card;
  root.dataset.state = 'error';
  delete root.dataset.prediction;
  root.dataset.error = message;
  clear(body, 
    h('h3', { class: 'file-name', title: card.name }, card.name),
    h('p', { class: 'error', role: 'alert' }, `Could not classify: ${message}`));
}

// Maps a [0,1] activation to a colour from red to yellow; weak regions stay transparent so
// the anatomy remains visible and only what drove the prediction is tinted.
function heatColour(v) {
  const g = Math.max(0, 2 * v - 1);
  return [255, 255 * g, 0, v < 0.15 ? 0 : 255 * 0.65 * Math.min(1, (v - 0.15) / 0.6)];
}

// The map covers the part of the image the model saw (result.region: all of it, or the
// square around the head when the model crops), placed over the thumbnail, which shows the
// whole image stretched to the square.
export function drawHeatmap(card, result) {
  card.thumb.querySelector('canvas.heatmap')?.remove();
  card.thumb.append(heatmapCanvas(result));  // smooth scaling; the thumbnail clips what lies past the image
}

// The Grad-CAM map as a canvas placed (in percentages) over the image it was computed on.
export function heatmapCanvas({ heatmap, region }) {
  const canvas = h('canvas', { class: 'heatmap', width: heatmap.width, height: heatmap.height,
                              title: `Grad-CAM on layer ${heatmap.layer}` });
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(heatmap.width, heatmap.height);
  heatmap.data.forEach((v, i) => image.data.set(heatColour(v), 4 * i));
  ctx.putImageData(image, 0, 0);
  const share = (part, whole) => `${(100 * part / whole).toFixed(3)}%`;
  const cropped = region.x !== 0 || region.y !== 0 ||
    region.width !== region.imageWidth || region.height !== region.imageHeight;
  canvas.classList.toggle('cropped', cropped);
  Object.assign(canvas.style, {
    left: share(region.x, region.imageWidth), top: share(region.y, region.imageHeight),
    width: share(region.width, region.imageWidth), height: share(region.height, region.imageHeight) });
  return canvas;
}

export function disposeCard(card) {
  if (card.url) URL.revokeObjectURL(card.url);
  card.root.remove();
}
