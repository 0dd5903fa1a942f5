// NeuroLens page: starts the engine worker, loads the model in use (the fine-tuned one kept
// in IndexedDB, or the shipped one), and routes between the views. Each view lives in
// views/<name>.js and exports mount(section, app) -> {show?, modelChanged?, acceptFiles?}.
import { EngineClient } from './lib/engine-client.js';
import { filesFromDataTransfer } from './lib/files.js';
import { groupDigits } from './lib/format.js';
import { loadActiveModel, saveActiveModel, clearActiveModel } from './lib/model-store.js';
import { setUpOffline, setUpFileHandling, isolationHint, keepDownload } from './lib/offline.js';
import * as classifyView from './views/classify.js';
import * as finetuneView from './views/finetune.js';
import * as evaluateView from './views/evaluate.js';
import * as learnView from './views/learn.js';

const SHIPPED_MODEL_URL = 'model/neurolens.safetensors';
const statusLine = document.getElementById('status');

class App extends EventTarget {
  constructor() {
    super();
    this.model = null;        // {bytes, label, shipped, info}
    this.currentImage = null; // {name, file}: the image the Learn view looks at
    this.engine = new EngineClient({
      // A (re)started worker first gets the model in use back.
      onStart: async (client) => {
        if (this.model) await client.send('loadModel', { bytes: this.model.bytes.slice() });
      },
    });
  }

  // Makes `bytes` the model in use (after the worker accepted it). persist: keep it across
  // reloads (IndexedDB); the shipped model is never stored, clearing the entry instead.
  async useModel(bytes, { label, shipped = false, persist = true } = {}) {
    const info = await this.engine.request('loadModel', { bytes: bytes.slice() });
    this.model = { bytes, label, shipped, info };
    if (persist) {
      if (shipped) await clearActiveModel();
      else await saveActiveModel(bytes, label);
    }
    this.showStatus();
    this.dispatchEvent(new CustomEvent('model', { detail: this.model }));
    return info;
  }

  async fetchShippedModel({ signal } = {}) {
    const response = await fetch(SHIPPED_MODEL_URL, { signal });
    if (!response.ok) throw new Error(`the shipped model ${SHIPPED_MODEL_URL} could not be loaded (HTTP ${response.status})`);
    if (!navigator.serviceWorker?.controller) keepDownload(response.url, response.clone());  // for offline use
    return new Uint8Array(await response.arrayBuffer());
  }

  async useShippedModel() {
    return this.useModel(await this.fetchShippedModel(), { label: 'shipped model', shipped: true });
  }

  showStatus(message) {
    if (message) { statusLine.textContent = message; return; }
    const m = this.model;
    if (!m) return;
    const params = groupDigits(m.info.parameterCount);
    const e = this.engineStatus;
    // e.why: the reason a better build is not running, e.g. "not cross-origin isolated"; on a
    // built site, the hint says when the service worker makes the page isolated (lib/offline.js)
    const hint = e?.why?.includes('not cross-origin isolated') ? isolationHint(this) : '';
    const engine = e ? ` · engine: WebAssembly${e.simd ? ' SIMD' : ''}, ${e.threads} thread${e.threads > 1 ? 's' : ''}` +
      (e.why ? ` — ${e.why}${hint ? ` (${hint})` : ''}` : '') : '';
    statusLine.textContent = `Model: ${m.label} (${m.info.classes.length} classes, ${params} parameters)${engine}`;
    statusLine.dataset.model = m.shipped ? 'shipped' : 'custom';
  }
}

// The model to start with, looked for while the engine starts: the one kept in IndexedDB,
// else the shipped one, whose download starts at once (it is the usual case, and the largest
// file of the page) and is cancelled when a kept model turns up.
function findInitialModel(app) {
  const controller = new AbortController();
  const shipped = app.fetchShippedModel({ signal: controller.signal });
  shipped.catch(() => {});  // surfaced when it is used
  const stored = loadActiveModel().catch((error) => {
    console.warn('IndexedDB unavailable, using the shipped model:', error);
    return null;
  });
  stored.then((found) => { if (found) controller.abort(); });
  return { stored, shipped };
}

async function loadInitialModel(app, { stored, shipped }) {
  const found = await stored;
  if (found) {
    try {
      await app.useModel(found.bytes, { label: found.label, persist: false });
      return;
    } catch (error) {
      // A stored model that no longer loads must not leave the page without a model.
      app.showStatus(`The saved model could not be loaded (${error.message}); using the shipped model.`);
      await clearActiveModel().catch(() => {});
    }
    shipped = app.fetchShippedModel();  // the early download was cancelled
  }
  // Nothing is stored (or the stored model was just cleared): nothing to clear in IndexedDB.
  await app.useModel(await shipped, { label: 'shipped model', shipped: true, persist: false });
}

function setUpViews(app) {
  const views = {};
  for (const [name, module] of Object.entries({
    classify: classifyView, finetune: finetuneView, evaluate: evaluateView, learn: learnView,
  })) {
    views[name] = module.mount(document.getElementById(`view-${name}`), app);
  }
  const tabs = [...document.querySelectorAll('.tabs a')];
  let active = 'classify';
  const show = () => {
    const wanted = location.hash.slice(1);
    active = views[wanted] ? wanted : 'classify';
    for (const section of document.querySelectorAll('.view')) section.hidden = section.dataset.view !== active;
    for (const tab of tabs) tab.setAttribute('aria-current', tab.dataset.view === active ? 'page' : 'false');
    views[active].show?.();
  };
  window.addEventListener('hashchange', show);
  show();
  return { views, active: () => views[active] };
}

// Drop anywhere, or paste: the files go to the view on screen.
function setUpDropAndPaste(router) {
  const overlay = document.getElementById('drop-overlay');
  let depth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
  document.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    if (depth++ === 0) overlay.hidden = false;
  });
  document.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; overlay.hidden = true; } });
  document.addEventListener('dragover', (event) => { if (hasFiles(event)) event.preventDefault(); });
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const pending = filesFromDataTransfer(event.dataTransfer);
    pending.then((files) => router.active().acceptFiles?.(files));
  });
  document.addEventListener('paste', (event) => {
    if (!event.clipboardData || event.clipboardData.files.length === 0) return;
    event.preventDefault();
    filesFromDataTransfer(event.clipboardData).then((files) => router.active().acceptFiles?.(files));
  });
}

async function main() {
  const app = new App();
  window.neurolens = app;  // for the console and the end-to-end tests
  const router = setUpViews(app);
  setUpDropAndPaste(router);
  setUpFileHandling((files) => router.active().acceptFiles?.(files));
  // The engine (the worker started with App) and the model at once; a built site's service
  // worker (none on the development server) once the page has started and the engine is idle:
  // started with the page, the offline copy (the service worker fetching the site) competed
  // for the two cores with the model's warm-up and a first classification, which then came
  // about 100 ms later (headless Chromium on 2 cores).
  const model = findInitialModel(app);
  let started;
  const startedPromise = new Promise((resolve) => { started = resolve; });
  setUpOffline(app, { after: startedPromise.then(() => app.engine.idle()) });
  try {
    // The model goes to the worker without waiting for the status reply (the worker answers
    // in order, so the status is known before the model's line is shown).
    const status = app.engine.request('status').then((engineStatus) => {
      app.engineStatus = engineStatus;
      app.dispatchEvent(new CustomEvent('engine', { detail: engineStatus }));
    });
    await Promise.all([status, loadInitialModel(app, model)]);
    document.body.dataset.ready = 'true';
  } catch (error) {
    app.showStatus(`NeuroLens could not start: ${error.message}`);
    document.body.dataset.ready = 'error';
  } finally {
    started();
  }
}

main();
