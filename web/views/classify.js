// Classify view: images from a drop (anywhere), paste or the file picker each get a card;
// the worker classifies them in order; a Grad-CAM toggle overlays heat-maps; a sortable
// results table with CSV export summarises the batch. DICOM and NIfTI files (and folders of
// them) go to views/scans.js, loaded the first time one arrives: a single-frame DICOM gets a
// card here, a series or volume a slice viewer above the cards.
import { h, clear } from '../lib/dom.js';
import { filesFromInput, isClutter } from '../lib/files.js';
import { scanKind } from '../lib/scan-files.js';
import { createCard, showResult, showError, drawHeatmap, disposeCard } from './result-card.js';
import { ResultsTable } from './results-table.js';

const IN_FLIGHT = 2;  // requests queued at the worker: keeps it busy while the next file is read

export function mount(section, app) {
  const cards = [];
  const queue = [];
  let running = 0;
  let order = 0;

  const picker = h('input', { type: 'file', multiple: true, id: 'classify-files', class: 'visually-hidden' });
  const folderPicker = h('input', { type: 'file', multiple: true, webkitdirectory: true, id: 'classify-folder', class: 'visually-hidden' });
  const gradcam = h('input', { type: 'checkbox', id: 'gradcam-toggle' });
  const grid = h('div', { class: 'cards', id: 'cards' });
  const scansBox = h('div', { class: 'scans', id: 'scans' });
  let scanViews = null;  // views/scans.js, imported when the first scan arrives
  const loadScanViews = () => (scanViews ??= import('./scans.js').catch((error) => { scanViews = null; throw error; }));
  const table = new ResultsTable();
  const summary = h('p', { class: 'summary', id: 'classify-summary' });

  section.append(
    h('div', { class: 'intro' },
      h('h2', {}, 'Classify MRI slices'),
      h('p', {}, 'Drop images anywhere on this page, paste them, or choose files. Each one is ',
        'classified as glioma, meningioma, pituitary tumor or no tumor. DICOM files and folders ',
        '(a series, a CD export) and NIfTI volumes are read here too, slice by slice.')),
    h('div', { class: 'toolbar' },
      h('label', { class: 'button primary', for: 'classify-files' }, 'Choose images…'), picker,
      h('label', { class: 'button', for: 'classify-folder' }, 'Choose a folder…'), folderPicker,
      h('label', { class: 'toggle' }, gradcam, ' Grad-CAM overlay'),
      h('button', { type: 'button', onclick: clearAll }, 'Clear'),
      summary),
    scansBox,
    grid,
    table.root);

  for (const input of [picker, folderPicker]) {
    input.addEventListener('change', () => {
      add(filesFromInput(input));
      input.value = '';
    });
  }
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

  // Drops are taken in order: each waits for the one before it to be sorted into images and
  // scans (a look at each file's first bytes).
  let adding = Promise.resolve();
  function add(files) {
    const wanted = files.filter(({ path }) => !isClutter(path));
    adding = adding.then(() => addNow(wanted)).catch((error) => console.error(error));
    return adding;
  }

  async function addNow(files) {
    const kinds = await Promise.all(files.map(({ file, path }) => scanKind(file, path).catch(() => null)));
    for (const [i, { file, path }] of files.entries()) if (!kinds[i]) addCard(createCard(path, file));
    refreshSummary();
    const scans = files.filter((_, i) => kinds[i]);
    if (scans.length > 0) {
      try {
        const { openScans } = await loadScanViews();
        await openScans(app, scans, { container: scansBox, single: addScanCard });
      } catch (error) {
        scansBox.append(h('p', { class: 'error', role: 'alert' }, `The scan files could not be read: ${error.message}`));
      }
    }
  }

  function addCard(card) {
    card.order = ++order;
    cards.push(card);
    grid.append(card.root);
    enqueue(card);
  }

  // A single-frame DICOM: a card like an image's, classified from its grey levels.
  async function addScanCard(volume, grey) {
    const { showGreyPreview } = await loadScanViews();
    const card = createCard(volume.source, null);
    showGreyPreview(card, grey);
    addCard(card);
    refreshSummary();
  }

  // An image the decoder refused as "not an image" may be a DICOM without the Part-10
  // preamble (or with an odd name): the scan module gets a try. -> true when it took the file.
  async function tryAsScan(card) {
    const { openScans, showGreyPreview } = await loadScanViews();
    const outcome = await openScans(app, [{ file: card.file, path: card.name }], {
      container: scansBox, fallback: true,
      single: (volume, grey) => { showGreyPreview(card, grey); enqueue(card); },
    });
    if (!outcome.recognised) return false;
    if (outcome.volumes === 0) {
      showError(card, outcome.problems[0]?.message ?? 'not a readable DICOM or NIfTI file');
    } else if (!card.grey) {  // a volume: its viewer replaces the card
      cards.splice(cards.indexOf(card), 1);
      disposeCard(card);
    }
    return true;
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
      let result;
      if (card.grey) {
        const { width, height, levels } = card.grey;
        result = await app.engine.request('classifyGrey', { width, height, levels: levels.slice(), gradcam: gradcam.checked });
      } else {
        const bytes = new Uint8Array(await card.file.arrayBuffer());
        result = await app.engine.request('classify', { bytes, gradcam: gradcam.checked },
                                          { transfer: [bytes.buffer] });
      }
      if (!cards.includes(card)) return;  // cleared meanwhile
      showResult(card, result);
      if (!card.grey) app.currentImage = { name: card.name, file: card.file };
    } catch (error) {
      if (!cards.includes(card)) return;
      if (!card.grey && !card.triedAsScan && /not an image/.test(error.message)) {
        card.triedAsScan = true;
        try {
          if (await tryAsScan(card)) return;
        } catch (scanError) {
          console.warn(`${card.name}: the scan reader failed too:`, scanError);
        }
      }
      showError(card, error.message);
    }
  }

  function clearAll() {
    queue.length = 0;
    for (const card of cards) disposeCard(card);
    cards.length = 0;
    clear(grid);
    if (scanViews) scanViews.then((m) => m.clearScans(scansBox));
    refreshSummary();
  }

  return {
    acceptFiles: add,
    // For tests and the console: the cards' state.
    cards,
    redrawHeatmaps() { for (const c of cards) if (c.result?.heatmap) drawHeatmap(c, c.result); },
  };
}
