// DICOM and NIfTI on the Classify view (loaded by classify.js only when a scan arrives). One
// drop's scan files are read together in the worker by the scan module (lib/scan-jobs.js): a
// single-frame DICOM becomes an ordinary result card (the classify view's, through
// `single`), each series, multi-frame object or NIfTI volume a viewer card:
//   - the slice at full size, with a slider, arrow keys (PageUp/PageDown: 10 slices,
//     Home/End) and the mouse wheel to move through the slices;
//   - window/level dragged on the image (horizontal: width, vertical: level) with the file's
//     and the automatic windows as presets (the window changes only what is shown: slices are
//     classified through the file's window, else the automatic one);
//   - per-slice class probabilities as a strip chart along the slices (click: show that
//     slice), the most tumour-like slice, Grad-CAM on the slice shown, a summary (with how many
//     slices the model's outlier detector found unlike a brain MRI slice) and a CSV with one
//     row per slice.
// The slice shown gets the classify card's verdict (result-card.js resultVerdict): a slice
// unlike a brain MRI slice or an uncertain answer says so.
// Slices are classified in the worker a few at a time, so slice and window requests get in
// between and the page stays responsive; a progress bar follows.
// Shown about a scan: only the scan module's `info` (modality, series description,
// dimensions, spacing, slice thickness, transfer syntax, notes), never patient data.
// DOM hooks: the viewer (.scan-viewer) has data-file (its file or folder), data-state
// (pending | done | error), data-slices, data-slice (the slice shown, 0-based), data-window
// ("center,width" of the window shown, once drawn), data-verdict (a class, or "none" when no
// slice looks like a brain MRI slice), data-out-of-distribution-slices; every per-slice result
// (.slice-result for the slice shown, .strip-slice in the chart) has data-file, data-slice and,
// once classified, data-prediction and (as on a classify card) data-flag="ood" | "uncertain"
// when the model's confidence says so.
import { h, clear, add, percent, download } from '../lib/dom.js';
import { readableClass, classColour } from '../lib/labels.js';
import { toCsv, CONFIDENCE_COLUMNS, confidenceFields } from '../lib/csv.js';
import { resultVerdict, resultFlag, setFlag, heatmapCanvas } from './result-card.js';

// This view's styles come with it (the page's style.css has none of them).
const styles = new Promise((resolve) => {
  const link = h('link', { rel: 'stylesheet', href: new URL('./scans.css', import.meta.url).href });
  link.addEventListener('load', resolve, { once: true });
  link.addEventListener('error', resolve, { once: true });
  document.head.append(link);
});

// Makes a classify card show a scan slice ({width, height, levels}): the card classifies
// these levels (classifyGrey) from then on.
export function showGreyPreview(card, grey) {
  card.grey = grey;
  if (card.url) URL.revokeObjectURL(card.url);
  card.url = null;
  card.thumb.classList.remove('no-preview');
  const canvas = h('canvas', { class: 'preview', role: 'img', 'aria-label': `Slice of ${card.name}` });
  drawGrey(canvas, grey);
  clear(card.thumb, canvas);
  card.root.dataset.slice = '0';
}

// Draws width*height grey levels on a canvas of that size.
function drawGrey(canvas, { width, height, levels }) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(width, height);
  const rgba = new Uint32Array(image.data.buffer);
  for (let i = 0; i < levels.length; ++i) rgba[i] = 0xff000000 | (levels[i] * 0x010101);  // little-endian RGBA
  ctx.putImageData(image, 0, 0);
}

// Slices per classification request: sized to take about CHUNK_MS in the worker, so that a
// slice or window request waits at most about that long behind the classification.
const CHUNK_MS = 150;
const MAX_CHUNK = 16;
const NO_TUMOUR = 'notumor';

const viewers = new Set();
const groups = new Set();
let classifyChain = Promise.resolve();  // volumes are classified one after the other

// One drop's scan files, read in the worker. The worker forgets them when it is restarted (a
// crash, a cancelled fine-tune): requests then read the files again first.
class ScanGroup {
  constructor(app, files) {
    this.app = app;
    this.files = files;      // [{file, path}]
    this.set = null;
    this.generation = -1;    // the engine's restart count when the worker read the files
    this.users = 0;
  }

  async open() {
    const files = await Promise.all(this.files.map(async ({ file, path }) =>
      ({ name: path, bytes: new Uint8Array(await file.arrayBuffer()) })));
    const generation = this.app.engine.restarts;
    const result = await this.app.engine.request('scanOpen', { files }, { transfer: files.map((f) => f.bytes.buffer) });
    this.set = result.set;
    this.generation = generation;
    return result;
  }

  async request(type, payload, options) {
    if (this.closed) throw new Error('the scan was closed');
    if (this.generation !== this.app.engine.restarts) await this.open();
    try {
      return await this.app.engine.request(type, { set: this.set, ...payload }, options);
    } catch (error) {
      if (!/is not loaded in this engine/.test(error.message)) throw error;
      await this.open();
      return this.app.engine.request(type, { set: this.set, ...payload }, options);
    }
  }

  release() {
    if (--this.users > 0 || this.closed) return;
    this.closed = true;
    groups.delete(this);
    if (this.set !== null && this.generation === this.app.engine.restarts) {
      this.app.engine.request('scanClose', { set: this.set }).catch(() => {});
    }
  }
}

// Reads a drop's scan files [{file, path}] and shows what they hold in `container`.
// single(volume, grey): shows a single-frame DICOM as a result card (grey: {width, height,
// levels}). fallback: the one file is an image the decoder refused; when the scan module does
// not recognise it either, nothing is shown. -> {recognised, volumes, problems}
export async function openScans(app, files, { container, single, fallback = false }) {
  await styles;
  const group = new ScanGroup(app, files);
  groups.add(group);
  const status = h('p', { class: 'hint scan-reading' }, `Reading ${files.length} scan file${files.length > 1 ? 's' : ''}…`);
  const panel = h('section', { class: 'scan-drop', 'aria-label': 'Scans' }, status);
  if (!fallback) container.append(panel);
  let result;
  try {
    result = await group.open();
  } catch (error) {
    groups.delete(group);
    if (fallback) return { recognised: false, volumes: 0, problems: [] };
    clear(panel, h('p', { class: 'error', role: 'alert' }, `The scan files could not be read: ${error.message}`));
    return { recognised: true, volumes: 0, problems: [] };
  }
  const recognised = result.kinds.some((k) => k !== 'other');
  if (fallback && !recognised) {
    groups.delete(group);
    return { recognised: false, volumes: 0, problems: result.problems };
  }
  status.remove();
  if (fallback) container.append(panel);
  if (result.problems.length > 0 && !(fallback && result.volumes.length === 0)) {
    panel.append(h('div', { class: 'scan-problems panel' },
      h('h3', {}, `${result.problems.length} file${result.problems.length > 1 ? 's' : ''} left out`),
      h('ul', {}, result.problems.map((p) => h('li', { dataset: { file: p.file } },
        h('strong', {}, p.file), `: ${p.message}`)))));
  }
  group.users = 1;  // this function's, until every volume is shown; then each viewer's
  try {
    for (const [index, volume] of result.volumes.entries()) {
      if (volume.singleImage) {
        const slice = await group.request('scanSlice', { volume: index, z: 0 });
        single(volume, { width: slice.width, height: slice.height, levels: slice.grey });
      } else {
        group.users++;
        const viewer = new ScanViewer(app, group, index, volume);
        viewers.add(viewer);
        panel.append(viewer.root);
        viewer.start();
      }
    }
  } finally {
    group.release();
  }
  if (panel.childElementCount === 0) panel.remove();
  return { recognised: true, volumes: result.volumes.length, problems: result.problems };
}

// Removes every viewer and frees the scans in the worker (the Clear button).
export function clearScans(container) {
  for (const viewer of [...viewers]) viewer.dispose();
  for (const group of [...groups]) { group.users = 0; group.release(); }
  clear(container);
}

const formatMm = (v) => (v > 0 ? `${+v.toFixed(3)} mm` : '?');

function infoList(volume) {
  const i = volume.info;
  const rows = [
    ['Format', i.format],
    ['Modality', i.modality],
    ['Series', i.seriesDescription],
    ['Size', `${i.width} × ${i.height} × ${i.slices} slices`],
    ['Spacing', i.spacing.some((s) => s > 0) ? i.spacing.map(formatMm).join(' × ') : ''],
    ['Slice thickness', i.sliceThickness > 0 ? formatMm(i.sliceThickness) : ''],
    ['Data', i.dataType],
    ['Transfer syntax', i.transferSyntax],
    ['Slice order', i.orientation],
  ].filter(([, v]) => v);
  return h('dl', { class: 'scan-info' }, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

const sameWindow = (a, b) => a && b && a.center === b.center && a.width === b.width;
const roundWindow = (v) => +v.toPrecision(6);

class ScanViewer {
  constructor(app, group, index, volume) {
    this.app = app;
    this.group = group;
    this.index = index;
    this.volume = volume;
    this.info = volume.info;
    this.name = volume.source;
    this.slices = volume.slices;
    this.z = Math.floor((this.slices - 1) / 2);
    this.results = new Array(this.slices).fill(null);
    this.classes = app.model?.info.classes ?? [];
    this.preset = this.info.fileWindow ? 'file' : 'auto';
    this.window = { ...(this.info.fileWindow ?? this.info.autoWindow) };
    this.build();
    this.onModel = () => this.reclassify();
    app.addEventListener('model', this.onModel);
  }

  build() {
    const name = this.name;
    const i = this.info;
    this.canvas = h('canvas', { class: 'slice-canvas', width: this.volume.width, height: this.volume.height });
    this.stage = h('div', {
      class: 'viewer-stage', tabindex: 0, role: 'img',
      'aria-label': `${name}: slice viewer. Arrow keys or the wheel change the slice; drag to change the window.`,
    }, this.canvas);
    // Pixels need not be square: the stage keeps the scan's proportions in millimetres.
    const [sx, sy] = i.spacing;
    const aspect = (this.volume.width * (sx > 0 && sy > 0 ? sx : 1)) / (this.volume.height * (sx > 0 && sy > 0 ? sy : 1));
    this.stage.style.aspectRatio = String(aspect);
    this.slider = h('input', { type: 'range', class: 'slice-slider', min: 0, max: this.slices - 1, step: 1,
                               value: this.z, 'aria-label': `Slice of ${name}` });
    this.sliceLabel = h('span', { class: 'slice-label' });
    this.windowReadout = h('span', { class: 'window-readout' });
    this.fileButton = h('button', { type: 'button', class: 'window-preset', dataset: { preset: 'file' },
      disabled: !i.fileWindow, title: i.fileWindow ? 'The window stored in the file' : 'The file stores no window',
      onclick: () => this.setWindow(i.fileWindow, 'file') }, 'From file');
    this.autoButton = h('button', { type: 'button', class: 'window-preset', dataset: { preset: 'auto' },
      title: 'From the 0.5th to the 99.5th percentile of the values',
      onclick: () => this.setWindow(i.autoWindow, 'auto') }, 'Auto');
    this.gradcam = h('input', { type: 'checkbox', class: 'viewer-gradcam', checked: true });
    this.sliceResult = h('div', { class: 'slice-result', dataset: { file: name, slice: this.z } });
    this.progress = h('progress', { class: 'scan-progress', max: this.slices, value: 0 });
    this.progressText = h('span', { class: 'scan-progress-text' });
    this.summary = h('div', { class: 'scan-summary' });
    this.mostButton = h('button', { type: 'button', class: 'most-tumour', disabled: true,
      onclick: () => this.showMostTumourLike() }, 'Most tumour-like slice');
    this.csvButton = h('button', { type: 'button', class: 'scan-csv', disabled: true,
      onclick: () => this.exportCsv() }, 'Export CSV');
    this.strip = h('div', { class: 'strip', role: 'group',
      'aria-label': 'Class probabilities of each slice; click a slice to show it' });
    this.legend = h('p', { class: 'strip-legend' });
    this.buildStrip();

    this.root = h('article', {
      class: 'scan-viewer', dataset: { file: name, state: 'pending', slices: this.slices, slice: this.z },
    },
    h('header', { class: 'scan-head' },
      h('h3', { class: 'file-name', title: name }, name),
      h('p', { class: 'scan-kind' }, [i.format, i.modality, i.seriesDescription].filter(Boolean).join(' · '))),
    h('div', { class: 'viewer-grid' },
      h('div', { class: 'viewer-left' },
        this.stage,
        h('div', { class: 'slice-controls' }, this.slider, this.sliceLabel),
        h('div', { class: 'window-controls' }, this.windowReadout, this.fileButton, this.autoButton,
          h('label', { class: 'toggle' }, this.gradcam, ' Grad-CAM')),
        h('p', { class: 'hint' }, 'Drag on the image to change the window: left–right its width (contrast), ',
          'up–down its level (brightness). Wheel, arrow keys or the slider: slices.')),
      h('div', { class: 'viewer-right' },
        this.sliceResult,
        h('div', { class: 'scan-progress-row' }, this.progress, this.progressText),
        this.summary,
        h('div', { class: 'strip-panel' }, this.strip, this.legend),
        h('div', { class: 'toolbar' }, this.mostButton, this.csvButton),
        h('details', { class: 'scan-details' }, h('summary', {}, 'About this scan'), infoList(this.volume),
          i.notes.length ? h('ul', { class: 'scan-notes' }, i.notes.map((n) => h('li', {}, n))) : null))));
    this.wire();
    this.showSliceLabel();
    this.showWindowReadout();
  }

  wire() {
    this.slider.addEventListener('input', () => this.goTo(Number(this.slider.value)));
    this.root.addEventListener('keydown', (event) => {
      if (event.target === this.slider || event.altKey || event.ctrlKey || event.metaKey) return;
      const steps = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1, PageUp: 10, PageDown: -10 };
      let z = null;
      if (event.key in steps) z = this.z + steps[event.key];
      else if (event.key === 'Home') z = 0;
      else if (event.key === 'End') z = this.slices - 1;
      if (z === null || event.target.closest('button, input, select, summary')) return;
      event.preventDefault();
      this.goTo(z);
    });
    this.stage.addEventListener('wheel', (event) => {
      if (event.deltaY === 0) return;
      event.preventDefault();
      this.goTo(this.z + Math.sign(event.deltaY));
    }, { passive: false });
    // Window/level: a drag from where it starts, scaled so that the stage's width spans the
    // whole range of values.
    this.stage.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      this.stage.focus();
      this.stage.setPointerCapture(event.pointerId);
      const start = { x: event.clientX, y: event.clientY, window: { ...this.window } };
      const range = Math.max(this.info.maximum - this.info.minimum, 1e-6);
      const perPixel = range / Math.max(this.stage.getBoundingClientRect().width, 100);
      const move = (e) => {
        const width = Math.max(start.window.width + (e.clientX - start.x) * perPixel, range / 1000);
        const center = start.window.center + (e.clientY - start.y) * perPixel;
        this.setWindow({ center: roundWindow(center), width: roundWindow(width), function: 'linear' }, 'custom');
      };
      const end = () => {
        this.stage.removeEventListener('pointermove', move);
        this.stage.classList.remove('dragging');
      };
      this.stage.classList.add('dragging');
      this.stage.addEventListener('pointermove', move);
      this.stage.addEventListener('pointerup', end, { once: true });
      this.stage.addEventListener('pointercancel', end, { once: true });
    });
    this.strip.addEventListener('click', (event) => {
      const column = event.target.closest('.strip-slice');
      if (column) { this.goTo(Number(column.dataset.slice)); this.stage.focus(); }
    });
    this.gradcam.addEventListener('change', () => {
      this.root.classList.toggle('hide-heatmap', !this.gradcam.checked);
      if (this.gradcam.checked && !this.current?.heatmap) this.refreshCurrent();
    });
  }

  start() {
    this.render();
    this.refreshCurrent();
    this.classifyAll();
  }

  // ---- the slice shown and its window ----

  goTo(z) {
    z = Math.max(0, Math.min(this.slices - 1, Math.round(z)));
    if (z === this.z) return;
    this.z = z;
    this.slider.value = String(z);
    this.root.dataset.slice = String(z);
    this.showSliceLabel();
    this.markCurrentColumn();
    this.render();
    // The slice's own classification (and Grad-CAM) once the slice stays put for a moment:
    // scrolling through slices does not queue one per slice passed.
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refreshCurrent(), 120);
  }

  setWindow(window, preset) {
    if (!window) return;
    this.window = { center: window.center, width: window.width, function: window.function ?? 'linear' };
    this.preset = preset;
    this.showWindowReadout();
    this.render();
  }

  showSliceLabel() {
    const file = this.volume.sliceFiles?.[this.z];
    this.sliceLabel.textContent = `Slice ${this.z + 1} of ${this.slices}`;
    this.sliceLabel.title = file ? `from ${file}` : '';
  }

  showWindowReadout() {
    const { center, width } = this.window;
    const label = { file: 'from file', auto: 'auto', custom: 'custom' }[this.preset];
    this.windowReadout.textContent = `Level ${+center.toPrecision(5)} · width ${+width.toPrecision(5)} (${label})`;
    this.root.dataset.windowPreset = this.preset;
    for (const b of [this.fileButton, this.autoButton]) b.setAttribute('aria-pressed', String(b.dataset.preset === this.preset));
  }

  // Draws the slice shown through the window shown. One request at a time; while one runs,
  // later changes are folded into the next.
  async render() {
    if (this.rendering) { this.renderAgain = true; return; }
    this.rendering = true;
    try {
      do {
        this.renderAgain = false;
        const z = this.z, window = { ...this.window };
        const slice = await this.group.request('scanSlice', { volume: this.index, z, window });
        if (this.disposed) return;
        drawGrey(this.canvas, { width: slice.width, height: slice.height, levels: slice.grey });
        if (this.z === z && sameWindow(window, this.window)) {
          this.root.dataset.shownSlice = String(z);
          this.root.dataset.window = `${window.center},${window.width}`;
        }
      } while (this.renderAgain);
    } catch (error) {
      if (!this.disposed) this.fail(error);
    } finally {
      this.rendering = false;
    }
  }

  // The shown slice's own classification, with Grad-CAM when asked for (latest slice wins).
  async refreshCurrent() {
    if (this.refreshing) { this.refreshAgain = true; return; }
    this.refreshing = true;
    try {
      do {
        this.refreshAgain = false;
        const z = this.z;
        const r = await this.group.request('scanClassifySlice', { volume: this.index, z, gradcam: this.gradcam.checked });
        if (this.disposed) return;
        if (z === this.z) this.showCurrent(r);
        if (!this.results[z]) this.setResult(z, r);
      } while (this.refreshAgain);
    } catch (error) {
      if (!this.disposed) this.fail(error);
    } finally {
      this.refreshing = false;
    }
  }

  showCurrent(r) {
    this.current = r;
    const el = this.sliceResult;
    el.dataset.slice = String(r.z);
    el.dataset.prediction = r.className;
    setFlag(el, r);
    const file = this.volume.sliceFiles?.[r.z];
    clear(el,
      resultVerdict(r, { lead: `Slice ${r.z + 1}: ` }),
      file ? h('p', { class: 'timing' }, file.split('/').pop()) : null);
    this.stage.querySelector('canvas.heatmap')?.remove();
    if (r.heatmap) this.stage.append(heatmapCanvas(r));
  }

  // ---- every slice ----

  buildStrip() {
    const tumourFirst = [...this.classes.filter((c) => c !== NO_TUMOUR), ...this.classes.filter((c) => c === NO_TUMOUR)];
    this.stackOrder = tumourFirst.map((c) => this.classes.indexOf(c));
    clear(this.strip, Array.from({ length: this.slices }, (_, z) =>
      h('div', { class: 'strip-slice', dataset: { file: this.name, slice: z }, title: `Slice ${z + 1}: not classified yet` })));
    clear(this.legend, this.classes.map((c, i) =>
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: { background: classColour(c, i) } }), readableClass(c))));
    this.markCurrentColumn();
  }

  markCurrentColumn() {
    this.strip.querySelector('.strip-slice.current')?.classList.remove('current');
    this.strip.children[this.z]?.classList.add('current');
  }

  setResult(z, r) {
    this.results[z] = { probabilities: Array.from(r.probabilities), classIndex: r.classIndex, className: r.className,
                        uncertain: Boolean(r.uncertain), outOfDistribution: Boolean(r.outOfDistribution),
                        outlierScore: r.outlierScore };
    const column = this.strip.children[z];
    column.dataset.prediction = r.className;
    setFlag(column, r);
    const flag = { ood: ' (does not look like a brain MRI slice)', uncertain: ' (uncertain)' }[resultFlag(r)] ?? '';
    column.title = `Slice ${z + 1}: ${readableClass(r.className)}${flag} ` +
      this.classes.map((c, i) => `${readableClass(c)} ${percent(r.probabilities[i])}`).join(', ');
    clear(column, this.stackOrder.map((i) => h('span', {
      class: 'segment', style: { height: percent(r.probabilities[i], 2), background: classColour(this.classes[i], i) } })));
  }

  classifyAll() {
    // A later call (a new model) makes an earlier one stop at its next chunk.
    const generation = (this.classifyGeneration = (this.classifyGeneration ?? 0) + 1);
    this.root.dataset.state = 'pending';
    this.mostButton.disabled = this.csvButton.disabled = true;
    const run = async () => {
      if (this.disposed || generation !== this.classifyGeneration) return;
      const todo = [];
      for (let z = 0; z < this.slices; ++z) if (!this.results[z]) todo.push(z);
      const total = this.slices;
      const showProgress = () => {
        const done = this.results.filter(Boolean).length;
        this.progress.value = done;
        this.progressText.textContent = done < total ? `Classified ${done} of ${total} slices…` : `${total} slices classified`;
      };
      showProgress();
      try {
        let chunk = 2;
        for (let at = 0; at < todo.length;) {
          const slices = todo.slice(at, at + chunk).filter((z) => !this.results[z]);
          at += chunk;
          if (slices.length === 0) continue;
          const base = this.results.filter(Boolean).length;
          const started = performance.now();
          const results = await this.group.request('scanClassify', { volume: this.index, slices }, {
            onProgress: ({ done }) => {
              this.progress.value = base + done;
              this.progressText.textContent = `Classified ${base + done} of ${total} slices…`;
            } });
          if (this.disposed || generation !== this.classifyGeneration) return;
          for (const r of results) this.setResult(r.z, r);
          showProgress();
          const perSlice = (performance.now() - started) / slices.length;
          chunk = Math.max(1, Math.min(MAX_CHUNK, Math.floor(CHUNK_MS / Math.max(perSlice, 1))));
        }
        const summary = await this.app.engine.request('summarizeVolume', { probabilities: this.results.map((r) => r.probabilities) });
        if (this.disposed || generation !== this.classifyGeneration) return;
        this.finished(summary);
      } catch (error) {
        if (!this.disposed) this.fail(error);
      }
    };
    classifyChain = classifyChain.then(run, run);
    return classifyChain;
  }

  reclassify() {
    if (this.disposed) return;
    this.classes = this.app.model?.info.classes ?? [];
    this.results.fill(null);
    this.buildStrip();
    clear(this.summary);
    this.refreshCurrent();
    this.classifyAll();
  }

  // summary: the engine's summarizeVolume (the rule the command line uses, README "Scanner
  // formats"): slices per class, the most tumour-like slice, the verdict.
  finished(summary) {
    const counts = summary.slicesPerClass;
    const verdict = summary.verdict;
    const most = this.classes.includes(NO_TUMOUR) ? { z: summary.mostTumourLike, score: summary.mostTumourLikeScore } : null;
    const verdictText = verdict === NO_TUMOUR
      ? (summary.tumourSlices === 0 ? `No tumour predicted on any of the ${this.slices} slices.`
        : `No tumour: ${summary.tumourSlices} of ${this.slices} slices predicted as a tumour, fewer than the ${summary.tumourSlicesNeeded} a tumour verdict needs.`)
      : `${readableClass(verdict)}: predicted on ${counts[summary.verdictIndex]} of ${this.slices} slices` +
        (summary.tumourSlices > counts[summary.verdictIndex] ? ` (${summary.tumourSlices} slices predicted as some tumour).` : '.');
    this.mostTumour = most;
    const outliers = this.results.filter((r) => r?.outOfDistribution).length;
    this.root.dataset.outOfDistributionSlices = String(outliers);
    // When no slice looks like a brain MRI slice, a class verdict would only mislead: the scan
    // leads with that, as a card does for an image (the counts stay below).
    const noVerdict = outliers === this.slices;
    this.root.dataset.verdict = noVerdict ? 'none' : verdict;
    const verdictLine = noVerdict
      ? h('p', { class: 'scan-verdict', dataset: { verdict: 'none' } }, h('strong', {}, 'No verdict: '),
        `none of the ${this.slices} slices looks like a brain MRI slice.`)
      : h('p', { class: 'scan-verdict', dataset: { verdict } }, h('strong', {}, 'Verdict: '), verdictText);
    clear(this.summary,
      verdictLine,
      h('ul', { class: 'scan-counts' }, this.classes.map((c, i) => h('li', { dataset: { class: c, count: counts[i] } },
        h('span', { class: 'swatch', style: { background: classColour(c, i) } }), `${readableClass(c)}: ${counts[i]}`))),
      most && !noVerdict ? h('p', { class: 'hint' }, `Most tumour-like: slice ${most.z + 1} (${percent(most.score)} not “no tumour”).`) : null,
      outliers > 0 ? h('p', { class: 'notice scan-outliers' },
        h('span', { class: 'notice-icon', 'aria-hidden': 'true' }, '⚠ '),
        `${outliers} of the ${this.slices} slices do not look like brain MRI slices: their classes mean little.`) : null,
      h('p', { class: 'hint' }, 'A research and teaching tool, not a diagnosis.'));
    this.mostButton.disabled = !most;
    this.mostButton.title = most ? `Slice ${most.z + 1}` : 'The model has no "no tumor" class';
    this.csvButton.disabled = false;
    this.root.dataset.state = 'done';
  }

  showMostTumourLike() {
    const most = this.mostTumour;
    if (most) { this.goTo(most.z); this.stage.focus(); }
  }

  csv() {
    const header = ['file', 'slice', 'slice_file', 'predicted_class', 'prediction', 'confidence', ...this.classes.map((c) => `p_${c}`),
                    ...CONFIDENCE_COLUMNS];
    const rows = this.results.map((r, z) => [
      this.name, z, this.volume.sliceFiles?.[z] ?? '', r?.className ?? '', r ? readableClass(r.className) : '',
      r ? r.probabilities[r.classIndex].toFixed(6) : '', ...this.classes.map((c, i) => (r ? r.probabilities[i].toFixed(6) : '')),
      ...confidenceFields(r)]);
    return toCsv(header, rows);
  }

  exportCsv() {
    const base = this.name.split('/').filter(Boolean).pop()?.replace(/\.nii(\.gz)?$/i, '').replace(/[^\w.-]+/g, '_') || 'scan';
    download(this.csv(), `neurolens-${base}-slices.csv`, 'text/csv');
  }

  fail(error) {
    this.root.dataset.state = 'error';
    this.root.dataset.error = error.message;
    this.progressText.textContent = '';
    add(this.summary, h('p', { class: 'error', role: 'alert' }, `Could not classify this scan: ${error.message}`));
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.refreshTimer);
    viewers.delete(this);
    this.app.removeEventListener('model', this.onModel);
    this.group.release();
    this.root.remove();
  }
}
