// Fine-tune view: the user's labelled images (a dropped folder with class sub-folders, or
// loose images given a class here) fine-tune a copy of the model in the worker, with a
// progress bar, a live loss/accuracy chart and Cancel; validation accuracy before and after;
// then: use this model (kept in IndexedDB), download it, or go back to the shipped model.
import { h, clear, percent, download } from '../lib/dom.js';
import { filesFromInput, isClutter } from '../lib/files.js';
import { labelledSet } from '../lib/dataset.js';
import { readableClass } from '../lib/labels.js';
import { TrainingChart } from './training-chart.js';

const DEFAULTS = { last: { lr: 1e-3, layers: 2 }, all: { lr: 3e-4, layers: 0 } };

export function mount(section, app) {
  let items = [];          // {file, path, label}
  let unlabelled = [];     // {file, path}
  let job = null;          // the running fine-tune: {cancelFlag}
  let tuned = null;        // {bytes, result} of the last finished run

  const folderPicker = h('input', { type: 'file', multiple: true, webkitdirectory: true, id: 'finetune-folder', class: 'visually-hidden' });
  const filePicker = h('input', { type: 'file', multiple: true, id: 'finetune-files', class: 'visually-hidden' });
  const counts = h('div', { id: 'finetune-counts' });
  const assign = h('div', { id: 'finetune-assign' });
  const mode = h('select', { id: 'finetune-mode' },
    h('option', { value: 'last' }, 'Last layers only (fast)'),
    h('option', { value: 'all' }, 'Whole network'));
  const epochs = h('input', { type: 'number', id: 'finetune-epochs', min: 1, max: 200, value: 5, style: { width: '5rem' } });
  const lr = h('input', { type: 'number', id: 'finetune-lr', min: 0.000001, max: 1, step: 'any', value: DEFAULTS.last.lr, style: { width: '7rem' } });
  const batch = h('input', { type: 'number', id: 'finetune-batch', min: 1, max: 256, value: 16, style: { width: '5rem' } });
  const augment = h('input', { type: 'checkbox', id: 'finetune-augment', checked: true });
  const holdout = h('input', { type: 'number', id: 'finetune-holdout', min: 0, max: 50, value: 20, style: { width: '5rem' } });
  const start = h('button', { type: 'button', class: 'primary', id: 'finetune-start', disabled: true, onclick: run }, 'Start fine-tuning');
  const cancel = h('button', { type: 'button', id: 'finetune-cancel', hidden: true, onclick: cancelRun }, 'Cancel');
  const progress = h('progress', { id: 'finetune-progress', max: 1, value: 0 });
  const progressText = h('p', { class: 'hint', id: 'finetune-progress-text' }, 'Not started.');
  const chart = new TrainingChart();
  const outcome = h('div', { id: 'finetune-outcome' });
  const modelBar = h('div', { class: 'toolbar', id: 'finetune-model-bar' });
  const modelFile = h('input', { type: 'file', id: 'finetune-load-model', class: 'visually-hidden', accept: '.safetensors' });

  section.append(
    h('div', { class: 'intro' }, h('h2', {}, 'Fine-tune the model on your own labelled scans'),
      h('p', {}, 'Training runs here, in your browser; your images stay on this computer. Part of your images ',
        'is held out to measure accuracy before and after.')),
    h('div', { class: 'panel' }, h('h3', {}, '1. Labelled images'),
      h('div', { class: 'dropzone' }, 'Drop a folder whose sub-folders are class names (glioma, meningioma, notumor, pituitary) anywhere on this page, or ',
        h('label', { class: 'button', for: 'finetune-folder' }, 'choose a folder…'), ' ', folderPicker,
        h('label', { class: 'button', for: 'finetune-files' }, 'add single images…'), filePicker),
      counts, assign),
    h('div', { class: 'panel' }, h('h3', {}, '2. Settings'),
      h('div', { class: 'form-row' },
        h('label', {}, 'Train ', mode),
        h('label', {}, 'Epochs ', epochs),
        h('label', {}, 'Learning rate ', lr),
        h('label', {}, 'Batch size ', batch),
        h('label', { class: 'toggle', title: 'mirror, rotate, shift, zoom and change brightness/contrast at random' }, augment, ' Augment images'),
        h('label', {}, 'Hold out for validation (%) ', holdout)),
      h('div', { class: 'form-row' }, start, cancel)),
    h('div', { class: 'panel' }, h('h3', {}, '3. Progress'), progress, progressText, chart.canvas),
    h('div', { class: 'panel' }, h('h3', {}, '4. Result'), outcome),
    h('div', { class: 'panel' }, h('h3', {}, 'Model in use'), modelBar));

  mode.addEventListener('change', () => { lr.value = DEFAULTS[mode.value].lr; });
  folderPicker.addEventListener('change', () => { addFiles(filesFromInput(folderPicker)); folderPicker.value = ''; });
  filePicker.addEventListener('change', () => { addFiles(filesFromInput(filePicker)); filePicker.value = ''; });
  modelFile.addEventListener('change', async () => {
    const file = modelFile.files[0];
    modelFile.value = '';
    if (!file) return;
    try {
      await app.useModel(new Uint8Array(await file.arrayBuffer()), { label: `model file ${file.name}` });
    } catch (error) {
      renderModelBar(`Could not load ${file.name}: ${error.message}`);
    }
  });
  app.addEventListener('model', () => { renderModelBar(); renderCounts(); });

  function addFiles(files) {
    const classes = app.model?.info.classes ?? [];
    const set = labelledSet(files.filter((f) => !isClutter(f.path)), classes);
    items.push(...set.items);
    const labelledPaths = new Set(set.items.map((i) => i.path));
    unlabelled.push(...files.filter((f) => !isClutter(f.path) && !labelledPaths.has(f.path)));
    renderCounts();
  }

  function renderCounts() {
    const classes = app.model?.info.classes ?? [];
    clear(counts);
    clear(assign);
    const byClass = Object.fromEntries(classes.map((c) => [c, 0]));
    for (const item of items) byClass[item.label] = (byClass[item.label] ?? 0) + 1;
    if (items.length) {
      counts.append(h('table', { class: 'metrics' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Class'), h('th', { class: 'num' }, 'Images'))),
        h('tbody', {}, classes.map((c) => h('tr', { dataset: { class: c } },
          h('td', {}, readableClass(c)), h('td', { class: 'num' }, String(byClass[c])))))),
        h('p', {}, h('button', { type: 'button', onclick: () => { items = []; unlabelled = []; renderCounts(); } }, 'Remove all')));
    } else {
      counts.append(h('p', { class: 'hint' }, 'No labelled images yet.'));
    }
    if (unlabelled.length) {
      const choice = h('select', { id: 'finetune-assign-class' }, classes.map((c) => h('option', { value: c }, readableClass(c))));
      assign.append(h('p', {}, `${unlabelled.length} image(s) are not in a class folder. Label them as `, choice, ' ',
        h('button', { type: 'button', id: 'finetune-assign-button', onclick: () => {
          items.push(...unlabelled.map((f) => ({ ...f, label: choice.value })));
          unlabelled = [];
          renderCounts();
        } }, 'Add'), ' ',
        h('button', { type: 'button', onclick: () => { unlabelled = []; renderCounts(); } }, 'Ignore')));
    }
    start.disabled = items.length < 2 || job !== null;
  }

  function renderModelBar(message) {
    clear(modelBar, 
      h('span', {}, `In use: ${app.model?.label ?? '—'}`),
      app.model && !app.model.shipped
        ? h('button', { type: 'button', id: 'finetune-back', onclick: backToShipped }, 'Back to the shipped model') : null,
      h('button', { type: 'button', id: 'finetune-download-current', onclick: downloadCurrent }, 'Download it'),
      h('label', { class: 'button', for: 'finetune-load-model' }, 'Load a model file…'), modelFile,
      message ? h('span', { class: 'error' }, message) : null);
  }

  async function backToShipped() {
    try { await app.useShippedModel(); } catch (error) { renderModelBar(error.message); }
  }

  async function downloadCurrent() {
    download(await app.engine.request('saveModel'), 'neurolens-model.safetensors');
  }

  async function run() {
    if (job) return;
    const options = {
      epochs: Number(epochs.value), learningRate: Number(lr.value),
      trainableLayers: DEFAULTS[mode.value].layers, validationFraction: Number(holdout.value) / 100,
      batchSize: Number(batch.value), augment: augment.checked, seed: 1,
    };
    const cancelFlag = self.crossOriginIsolated ? new Int32Array(new SharedArrayBuffer(4)) : null;
    job = { cancelFlag };
    tuned = null;
    start.disabled = true;
    cancel.hidden = false;
    clear(outcome);
    chart.reset(options.epochs);
    progress.value = 0;
    progressText.textContent = 'Reading images…';
    section.dataset.finetune = 'running';
    try {
      const images = [];
      for (const item of items) images.push({ path: item.path, label: item.label, bytes: new Uint8Array(await item.file.arrayBuffer()) });
      const result = await app.engine.request('fineTune', { images, options, cancelFlag },
        { transfer: images.map((i) => i.bytes.buffer), onProgress: showProgress });
      if (result.cancelled) finish('cancelled', 'Cancelled. The model in use is unchanged.');
      else {
        tuned = { bytes: result.model, result };
        finish('done', `Finished ${result.history.length} epoch(s) on ${result.trainImages} images.`);
        renderOutcome(result);
      }
    } catch (error) {
      const cancelled = job?.cancelling;
      finish(cancelled ? 'cancelled' : 'error', cancelled ? 'Cancelled. The model in use is unchanged.' : `Fine-tuning failed: ${error.message}`);
    }
  }

  function finish(state, message) {
    job = null;
    section.dataset.finetune = state;
    progressText.textContent = message;
    cancel.hidden = true;
    renderCounts();
  }

  function cancelRun() {
    if (!job || job.cancelling) return;
    job.cancelling = true;
    progressText.textContent = 'Cancelling…';
    if (job.cancelFlag) {
      Atomics.store(job.cancelFlag, 0, 1);  // stops after the current batch
      const current = job;
      setTimeout(() => { if (job === current) app.engine.restart('cancelled'); }, 5000);
    } else {
      app.engine.restart('cancelled');  // no shared memory: stop the worker outright
    }
  }

  function showProgress(p) {
    if (p.kind === 'prepare') {
      progressText.textContent = `Decoding images: ${p.done} of ${p.total}`;
    } else if (p.kind === 'batch') {
      progress.max = p.epochs * p.batches;
      progress.value = (p.epoch - 1) * p.batches + p.batch;
      progressText.textContent = `Epoch ${p.epoch} of ${p.epochs} · batch ${p.batch} of ${p.batches} · ` +
        `loss ${p.loss.toFixed(3)} · accuracy ${percent(p.accuracy)} · ${p.imagesPerSecond.toFixed(1)} images/s`;
      chart.addBatch(p);
    } else if (p.kind === 'epoch') {
      chart.addEpoch(p);
    }
  }

  function renderOutcome(result) {
    const figure = (label, value, id) => h('div', { class: 'figure', id }, value, h('small', {}, label));
    clear(outcome, 
      result.hasValidation
        ? h('div', { class: 'figures' },
          figure(`validation accuracy before (${result.validationImages} images)`, percent(result.before.accuracy), 'finetune-before'),
          figure('after', percent(result.after.accuracy), 'finetune-after'))
        : h('p', { class: 'hint' }, 'Too few images to hold any out for validation.'),
      result.skippedFiles.length ? h('p', { class: 'error' }, `Skipped ${result.skippedFiles.length} file(s): ` +
        result.skippedFiles.map((s) => `${s.path} (${s.reason})`).join('; ')) : null,
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', class: 'primary', id: 'finetune-use', onclick: useTuned }, 'Use this model'),
        h('button', { type: 'button', id: 'finetune-download', onclick: () => download(tuned.bytes, 'neurolens-finetuned.safetensors') }, 'Download it')));
  }

  async function useTuned() {
    if (!tuned) return;
    try {
      await app.useModel(tuned.bytes, { label: `fine-tuned model (${new Date().toLocaleString('en')})` });
      outcome.append(h('p', { class: 'hint', id: 'finetune-in-use' }, 'This model is now in use, and will be after a reload.'));
    } catch (error) {
      outcome.append(h('p', { class: 'error' }, `Could not use the model: ${error.message}`));
    }
  }

  renderCounts();
  renderModelBar();
  return { acceptFiles: addFiles };
}
