// Evaluate view: a labelled folder (sub-folders named after the classes) is classified by the
// model in use; the page shows accuracy, the confusion matrix, per-class precision / recall /
// F1, how many answers the model's confidence flagged (uncertain, unlike a brain MRI slice) and
// a gallery of the misclassified images with what was predicted.
import { h, clear, add, percent } from '../lib/dom.js';
import { filesFromInput } from '../lib/files.js';
import { labelledSet } from '../lib/dataset.js';
import { confusionMatrix, classificationReport } from '../lib/metrics.js';
import { drawConfusionMatrix } from '../lib/charts.js';
import { readableClass } from '../lib/labels.js';

const fmt = (v) => (v === null ? '—' : v.toFixed(3));

export function mount(section, app) {
  const picker = h('input', { type: 'file', multiple: true, webkitdirectory: true, id: 'evaluate-folder', class: 'visually-hidden' });
  const progress = h('progress', { max: 1, value: 0, hidden: true, id: 'evaluate-progress' });
  const cancel = h('button', { type: 'button', hidden: true, onclick: () => { cancelled = true; } }, 'Cancel');
  const message = h('p', { class: 'hint', id: 'evaluate-message' });
  const results = h('div', { id: 'evaluate-results' });
  let running = false, cancelled = false;

  section.append(
    h('div', { class: 'intro' }, h('h2', {}, 'Evaluate the model on your labelled images'),
      h('p', {}, 'Drop a folder whose sub-folders are named after the classes (glioma, meningioma, ',
        'notumor or "No tumor", pituitary). Every image is classified here, in your browser.')),
    h('div', { class: 'dropzone' }, 'Drop a labelled folder anywhere on this page, or ',
      h('label', { class: 'button', for: 'evaluate-folder' }, 'choose a folder…'), picker),
    h('div', { class: 'toolbar' }, progress, cancel),
    message, results);

  picker.addEventListener('change', () => { run(filesFromInput(picker)); picker.value = ''; });

  async function run(files) {
    if (running) { message.textContent = 'An evaluation is already running.'; return; }
    const classes = app.model?.info.classes;
    if (!classes) { message.textContent = 'The model is not loaded yet.'; return; }
    const set = labelledSet(files, classes);
    clear(results);
    if (set.items.length === 0) {
      message.textContent = `No labelled images found: ${set.skipped.length} file(s) are not inside a folder named after a class (${classes.join(', ')}).`;
      return;
    }
    running = true; cancelled = false;
    progress.hidden = false; cancel.hidden = false;
    progress.max = set.items.length; progress.value = 0;
    const outcomes = [], failures = [];
    for (const item of set.items) {
      if (cancelled) break;
      message.textContent = `Classifying ${progress.value + 1} of ${set.items.length}: ${item.path}`;
      try {
        const bytes = new Uint8Array(await item.file.arrayBuffer());
        const r = await app.engine.request('classify', { bytes }, { transfer: [bytes.buffer] });
        outcomes.push({ ...item, prediction: r.className, confidence: r.probabilities[r.classIndex],
                        uncertain: Boolean(r.uncertain), outOfDistribution: Boolean(r.outOfDistribution) });
      } catch (error) {
        failures.push({ path: item.path, reason: error.message });
      }
      progress.value += 1;
    }
    running = false;
    progress.hidden = true; cancel.hidden = true;
    const skippedNote = set.skipped.length ? ` ${set.skipped.length} file(s) outside class folders were skipped.` : '';
    message.textContent = `${cancelled ? 'Cancelled after' : 'Evaluated'} ${outcomes.length} image(s) with the ${app.model.label}.` +
      `${failures.length ? ` ${failures.length} could not be read.` : ''}${skippedNote}`;
    if (outcomes.length) show(outcomes, failures, classes);
  }

  function show(outcomes, failures, classes) {
    const confusion = confusionMatrix(outcomes.map((o) => ({ label: o.label, prediction: o.prediction })), classes);
    const report = classificationReport(confusion, classes);
    const chart = h('canvas', { class: 'chart confusion', id: 'confusion-chart', style: { height: '320px', maxWidth: '520px' } });
    const wrong = outcomes.filter((o) => o.label !== o.prediction);
    const flagged = flaggedNote(outcomes);
    add(results,
      h('div', { class: 'panel figures' },
        h('div', { class: 'figure', id: 'evaluate-accuracy', dataset: { accuracy: report.accuracy } },
          percent(report.accuracy), h('small', {}, 'accuracy'),
          h('small', {
            id: 'evaluate-interval',
            dataset: { low: report.accuracyInterval.low, high: report.accuracyInterval.high },
            title: `With ${report.total} images the true accuracy plausibly lies anywhere in this range ` +
              '(95% Wilson interval); more images narrow it.',
          }, `95% interval ${percent(report.accuracyInterval.low)} – ${percent(report.accuracyInterval.high)}`)),
        h('div', { class: 'figure' }, String(report.total), h('small', {}, 'images')),
        h('div', { class: 'figure' }, fmt(report.macroF1), h('small', {}, 'macro F1'))),
      flagged,
      h('div', { class: 'two-col' },
        h('div', { class: 'panel' }, h('h3', {}, 'Confusion matrix'), chart),
        h('div', { class: 'panel' }, h('h3', {}, 'Per class'),
          h('table', { class: 'metrics', id: 'evaluate-metrics' },
            h('thead', {}, h('tr', {}, ['Class', 'Precision', 'Recall', 'F1', 'Images'].map((t) => h('th', {}, t)))),
            h('tbody', {}, report.perClass.map((c) => h('tr', { dataset: { class: c.name } },
              h('td', {}, readableClass(c.name)), h('td', { class: 'num' }, fmt(c.precision)),
              h('td', { class: 'num' }, fmt(c.recall)), h('td', { class: 'num' }, fmt(c.f1)),
              h('td', { class: 'num' }, String(c.support)))))))),
      h('div', { class: 'panel' }, h('h3', {}, `Misclassified (${wrong.length})`),
        wrong.length === 0 ? h('p', { class: 'hint' }, 'None.') :
          h('div', { class: 'gallery', id: 'misclassified' }, wrong.slice(0, 200).map(galleryItem))),
      failures.length ? h('div', { class: 'panel' }, h('h3', {}, 'Could not be read'),
        h('ul', {}, failures.map((f) => h('li', { class: 'error' }, `${f.path}: ${f.reason}`)))) : null);
    drawConfusionMatrix(chart, confusion, classes);
  }

  function galleryItem(o) {
    const url = URL.createObjectURL(o.file);
    const img = h('img', { src: url, alt: o.path });
    img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    img.addEventListener('error', () => URL.revokeObjectURL(url), { once: true });
    return h('figure', { dataset: { label: o.label, prediction: o.prediction } }, img,
      h('figcaption', {}, h('strong', {}, o.path.split('/').pop()), h('br'),
        `${readableClass(o.label)} → ${readableClass(o.prediction)} (${percent(o.confidence)})`,
        o.outOfDistribution ? [h('br'), 'does not look like a brain MRI slice'] : o.uncertain ? [h('br'), 'uncertain'] : null));
  }

  // How many answers the model's confidence flagged, and how often those and the rest were right.
  function flaggedNote(outcomes) {
    const count = (f) => outcomes.filter(f);
    const uncertain = count((o) => o.uncertain && !o.outOfDistribution);
    const ood = count((o) => o.outOfDistribution);
    const sure = count((o) => !o.uncertain && !o.outOfDistribution);
    if (uncertain.length === 0 && ood.length === 0) return null;
    const right = (list) => list.filter((o) => o.label === o.prediction).length;
    const part = (list, what) => `${list.length} ${what} (${right(list)} right)`;
    return h('p', { class: 'hint', id: 'evaluate-flagged', dataset: { uncertain: uncertain.length, outOfDistribution: ood.length } },
      [uncertain.length ? part(uncertain, 'uncertain') : null,
       ood.length ? part(ood, 'unlike a brain MRI slice') : null,
       part(sure, 'confident')].filter(Boolean).join(' · ') + '.');
  }

  return { acceptFiles: run };
}
