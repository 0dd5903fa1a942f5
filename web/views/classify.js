// Classify view: images from a drop (anywhere), paste or the file picker each get a card;
// the worker classifies them in order; a Grad-CAM toggle overlays heat-maps; a sortable
// results table with CSV export summarises the batch.
import { h, clear } from '../lib/dom.js';
import { filesFromInput, isClutter } from '../lib/files.js';
import { createCard, showResult, showError, drawHeatmap, disposeCard } from './result-card.js';
import { ResultsTable } from './results-table.js';

const IN_FLIGHT = 2;  // requests queued at the worker: keeps it busy while the next file is read

export function mount(section, app) {
  const cards = [];
  const queue = [];
  let running = 0;
  let order = 0;

  const picker = h('input', { type: 'file', multiple: true, id: 'classify-files', class: 'visually-hidden' });
  const gradcam = h('input', { type: 'checkbox', id: 'gradcam-toggle' });
  const grid = h('div', { class: 'cards', id: 'cards' });
  const table = new ResultsTable();
  const summary = h('p', { class: 'summary', id: 'classify-summary' });

  section.append(
    h('div', { class: 'intro' },
      h('h2', {}, 'Classify MRI slices'),
      h('p', {}, 'Drop images anywhere on this page, paste them, or choose files. Each one is ',
        'classified as glioma, meningioma, pituitary tumor or no tumor.')),
    h('div', { class: 'toolbar' },
      h('label', { class: 'button primary', for: 'classify-files' }, 'Choose images…'), picker,
      h('label', { class: 'toggle' }, gradcam, ' Grad-CAM overlay'),
      h('button', { type: 'button', onclick: clearAll }, 'Clear'),
      summary),
    grid,
    table.root);

  picker.addEventListener('change', () => {
    add(filesFromInput(picker));
    picker.value = '';
  });
  gradcam.addEventListener('change', () => {
    section.classList.toggle('show-heatmaps', gradcam.checked);
    if (!gradcam.checked) return;
    for (const card of cards) if (card.result && !card.result.heatmap) enqueue(card);
  });
  app.addEventListener('model', () => {  // a new model: classify everything again
    for (const card of cards) if (card.result || card.error) enqueue(card);
  });

  let tableTimer = null;
  function refreshSummary() {
    const done = cards.filter((c) => c.result).length;
    const failed = cards.filter((c) => c.error).length;
    summary.textContent = cards.length === 0 ? '' :
      `${done} classified${failed ? `, ${failed} failed` : ''}${queue.length + running ? `, ${queue.length + running} waiting` : ''}`;
    if (!tableTimer) {  // the table is rebuilt at most a few times a second
      tableTimer = setTimeout(() => {
        tableTimer = null;
        table.update(cards, app.model?.info.classes ?? []);
      }, 150);
    }
  }

  function add(files) {
    for (const { file, path } of files) {
      if (isClutter(path)) continue;
      const card = createCard(path, file);
      card.order = ++order;
      cards.push(card);
      grid.append(card.root);
      enqueue(card);
    }
    refreshSummary();
  }

  function enqueue(card) {
    if (!queue.includes(card)) queue.push(card);
    pump();
  }

  function pump() {
    while (running < IN_FLIGHT && queue.length > 0) {
      const card = queue.shift();
      running++;
      classifyCard(card).finally(() => {
        running--;
        refreshSummary();
        pump();
      });
    }
  }

  async function classifyCard(card) {
    try {
      const bytes = new Uint8Array(await card.file.arrayBuffer());
      const result = await app.engine.request('classify', { bytes, gradcam: gradcam.checked },
                                              { transfer: [bytes.buffer] });
      if (!cards.includes(card)) return;  // cleared meanwhile
      showResult(card, result);
      app.currentImage = { name: card.name, file: card.file };
    } catch (error) {
      if (cards.includes(card)) showError(card, error.message);
    }
  }

  function clearAll() {
    queue.length = 0;
    for (const card of cards) disposeCard(card);
    cards.length = 0;
    clear(grid);
    refreshSummary();
  }

  return {
    acceptFiles: add,
    // For tests and the console: the cards' state.
    cards,
    redrawHeatmaps() { for (const c of cards) if (c.result?.heatmap) drawHeatmap(c, c.result); },
  };
}
