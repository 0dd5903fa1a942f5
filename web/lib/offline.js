// The built site's service worker (../sw.js, see there) from the page's side: registers it,
// has it keep the engine build this page runs for offline use, shows "a new version is ready"
// with a Reload button when a new build has been deployed, and opens the files the operating
// system hands the installed app ("Open with", manifest file_handlers).
// Only a site made by scripts/build-site registers the worker: it marks its page with
// <meta name="neurolens-build" content="VERSION">; the development server's page has none.

export const siteVersion = () => document.querySelector('meta[name="neurolens-build"]')?.content ?? null;

// The service worker's cache for this version of the site (sw.js names it the same way).
const cacheName = (version) => `neurolens-${version}`;

// A content-hashed file the page has just downloaded itself (the model): a copy goes into this
// version's cache, so that the service worker's install finds it there instead of
// downloading it a second time. Nothing on the development server.
export function keepDownload(url, response) {
  const version = siteVersion();
  if (!version || !globalThis.caches || !response.ok) return;
  caches.open(cacheName(version)).then((cache) => cache.put(url, response)).catch(() => {});
}

// Registers the service worker once `after` has settled (the page has started: its install,
// the app shell and then the engine build, never competes with the page's own downloads).
// app.offline is there at once ({registration, controlled, version, pending}).
// -> {registration, controlled, version} or null (no built site, or no service workers).
export async function setUpOffline(app, { after = Promise.resolve() } = {}) {
  const version = siteVersion();
  if (!version || !('serviceWorker' in navigator)) return null;
  const controlled = Boolean(navigator.serviceWorker.controller);
  const state = { registration: null, controlled, version, offlineReady: false, pending: true };
  app.offline = state;
  await after.catch(() => {});

  let registration;
  try {
    registration = await navigator.serviceWorker.register(new URL('../sw.js', import.meta.url), { scope: new URL('../', import.meta.url).href });
  } catch (error) {
    console.warn('NeuroLens: the offline service worker could not be registered:', error);
    state.pending = false;
    app.showStatus?.();  // without the hint that a reload would help
    return state;
  }
  state.registration = registration;
  state.pending = false;

  // A new build: installed and waiting while this page runs the old one.
  const offerUpdate = (worker) => {
    if (!worker || !navigator.serviceWorker.controller) return;  // a first install is no update
    const show = () => showUpdateBanner(worker);
    if (worker.state === 'installed') show();
    else worker.addEventListener('statechange', () => { if (worker.state === 'installed') show(); });
  };
  offerUpdate(registration.waiting ?? registration.installing);
  registration.addEventListener('updatefound', () => offerUpdate(registration.installing));
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Only a reload the user asked for (the banner's button); the first install claims the page too.
    if (state.updateAccepted && !reloading) { reloading = true; location.reload(); }
  });
  state.checkForUpdate = () => registration.update();
  document.addEventListener('visibilitychange', () => { if (!document.hidden) registration.update().catch(() => {}); });
  setInterval(() => registration.update().catch(() => {}), 60 * 60 * 1000);

  // The engine build this page runs stays in the cache: the next start works offline. A page
  // the host left unisolated will be isolated by the service worker from the next load on:
  // the threaded build is kept as well, for that start (offline included).
  navigator.serviceWorker.addEventListener('message', (event) => {
    if (event.data?.type !== 'build-kept') return;
    state.offlineReady = Boolean(event.data.kept);
    document.body.dataset.offline = state.offlineReady ? 'ready' : 'failed';
    app.dispatchEvent(new CustomEvent('offline', { detail: state }));
  });
  const keep = async () => {
    const ready = await navigator.serviceWorker.ready;
    const e = app.engineStatus;
    const build = e?.build?.split('/').filter(Boolean)[0];
    if (!build) return;
    const builds = [build];
    if (build === 'wasm' && e.why === 'not cross-origin isolated' && (navigator.hardwareConcurrency ?? 1) > 1) builds.push('wasm-threads');
    ready.active?.postMessage({ type: 'keep-build', builds });
  };
  app.addEventListener('engine', () => keep().catch(() => {}));
  if (app.engineStatus) keep().catch(() => {});

  function showUpdateBanner(worker) {
    if (document.getElementById('update-banner')) return;
    const banner = document.createElement('div');
    banner.id = 'update-banner';
    banner.className = 'update-banner';
    banner.setAttribute('role', 'alert');
    const text = document.createElement('span');
    text.textContent = 'A new version of NeuroLens has been deployed. Reload to use it.';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'primary';
    button.textContent = 'Reload';
    button.addEventListener('click', () => {
      state.updateAccepted = true;
      worker.postMessage({ type: 'skip-waiting' });
    });
    const later = document.createElement('button');
    later.type = 'button';
    later.textContent = 'Later';
    later.addEventListener('click', () => banner.remove());
    banner.append(text, button, later);
    document.body.prepend(banner);
  }
  return state;
}

// Why this page is not cross-origin isolated, when the service worker will fix it on reload.
export function isolationHint(app) {
  const s = app.offline;
  if (!s || (!s.registration && !s.pending) || s.controlled || globalThis.crossOriginIsolated) return '';
  return 'this host sends no isolation headers; reload once and the service worker supplies them';
}

// The installed app opened with files ("Open with" NeuroLens): they go to the view on screen.
export function setUpFileHandling(deliver) {
  if (!('launchQueue' in window)) return;
  window.launchQueue.setConsumer(async (params) => {
    if (!params.files?.length) return;
    const files = [];
    for (const handle of params.files) {
      if (handle.kind !== 'file') continue;
      const file = await handle.getFile();
      files.push({ file, path: file.name });
    }
    if (files.length) deliver(files);
  });
}
