// One image's card on the Classify view: file name, thumbnail (with an optional Grad-CAM
// overlay), predicted class and confidence, a bar per class, inference time, or the error.
// When the model's outlier detector says the image is unlike a brain MRI slice, the card says
// so instead of naming a class (the probabilities fold away behind a <details>); when the
// answer is uncertain it names the two leading classes (resultVerdict, which the scan viewer
// uses too). The card's root carries data-state (pending | done | error) and, once classified,
// data-prediction="<class name as in the model>" and data-flag ("ood" | "uncertain", absent for
// a plain answer). A single-image DICOM's card shows its slice (grey levels through its window:
// views/scans.js) instead of the file, and carries data-slice="0".
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
  setFlag(root, result);
  clear(body,
    h('h3', { class: 'file-name', title: card.name }, card.name),
    resultVerdict(result),
    h('p', { class: 'timing' }, `${result.milliseconds.toFixed(1)} ms in the browser`));
  if (result.heatmap) drawHeatmap(card, result);
}

// What the model's confidence says about a result: 'ood' (the outlier detector: unlike a
// brain MRI slice), 'uncertain' (top probability below the model's threshold) or null.
export function resultFlag(result) {
  if (result?.outOfDistribution) return 'ood';
  if (result?.uncertain) return 'uncertain';
  return null;
}

// Sets (or removes) data-flag on el from a result.
export function setFlag(el, result) {
  const flag = resultFlag(result);
  if (flag) el.dataset.flag = flag;
  else delete el.dataset.flag;
}

export const OOD_TITLE = 'This does not look like a brain MRI slice';
export const OOD_TEXT = 'The model was trained on brain MRI slices only, so the class it gives this image means little.';

// The index of the second most probable class (-1 with a single class).
export function secondClassIndex({ probabilities: p, classIndex }) {
  let second = -1;
  for (let i = 0; i < p.length; ++i) if (i !== classIndex && (second < 0 || p[i] > p[second])) second = i;
  return second;
}

// A classification's verdict and its bars, as elements: a plain answer names the class and its
// probability; an uncertain one says so and names the two leading classes; one the outlier
// detector flags leads with "This does not look like a brain MRI slice" and keeps the
// probabilities behind "Show the probabilities anyway". lead: text put before the verdict
// (the scan viewer's "Slice 5: ").
export function resultVerdict(result, { lead = null } = {}) {
  const p = result.probabilities;
  const top = () => [h('strong', { class: 'predicted' }, readableClass(result.className)), ' ',
    h('span', { class: 'confidence' }, percent(p[result.classIndex]))];
  const flag = resultFlag(result);
  if (flag === 'ood') {
    const score = typeof result.outlierScore === 'number' ? ` (outlier score ${formatScore(result.outlierScore)})` : '';
    return [
      h('div', { class: 'notice ood', role: 'note' },
        h('p', { class: 'verdict ood-verdict' }, lead,
          h('span', { class: 'notice-icon', 'aria-hidden': 'true' }, '⚠ '),
          h('strong', { class: 'ood-title' }, OOD_TITLE)),
        h('p', { class: 'notice-text' }, OOD_TEXT)),
      h('details', { class: 'more-probabilities' },
        h('summary', {}, 'Show the probabilities anyway'),
        h('p', { class: 'model-pick' }, 'The model’s pick, for what it is worth: ', top(), score),
        classBars(result)),
    ];
  }
  if (flag === 'uncertain') {
    const second = secondClassIndex(result);
    return [
      h('p', { class: 'verdict uncertain-verdict' }, lead,
        h('strong', { class: 'uncertain-title' }, 'Uncertain: look at the second class too')),
      h('p', { class: 'candidates' }, top(),
        second >= 0 ? [' or ', h('strong', { class: 'second-class', dataset: { class: result.classes[second] } },
          readableClass(result.classes[second])), ' ', h('span', { class: 'second-confidence' }, percent(p[second]))] : null),
      classBars(result),
    ];
  }
  return [h('p', { class: 'verdict' }, lead, top()), classBars(result)];
}

function formatScore(v) {
  return Number.isFinite(v) ? String(+v.toPrecision(4)) : String(v);
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
  delete root.dataset.flag;
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
