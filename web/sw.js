// NeuroLens' service worker: the built site (scripts/build-site) works offline and is
// cross-origin isolated on any static host.
//  - install (the page registers this worker once it has started): the app shell and the model
//    of this build go into the cache `neurolens-VERSION` (VERSION: a hash of every file of the
//    build; a hashed file the page already put there is not fetched again); the wasm build
//    the page runs goes in when the page fetches it, or when the page names it (message
//    {type: 'keep-build', builds}: the first is the one running, the others are for the next
//    start);
//  - activate: older `neurolens-*` caches are removed;
//  - fetch: GETs of this build's files are answered from this version's cache, else from the
//    network (and kept); every answer gets COOP/COEP/CORP, so the page is cross-origin isolated from
//    its first controlled load (threads) even where the host sends no headers, and the
//    Content-Security-Policy header, which also governs the workers (a meta tag cannot);
//  - a new build waits until the page says {type: 'skip-waiting'} (its "Reload" button).
// scripts/build-site fills in SITE below; web/sw.js itself (SITE null, as the development
// server serves it) is never registered: the page registers only a built site's worker.
const SITE = /*@SITE@*/null;

const VERSION = SITE?.version ?? 'dev';
const CACHE = `neurolens-${VERSION}`;
const SCOPE = new URL('./', self.location).href;
const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy': SITE?.csp ?? "default-src 'self'",
  'X-Content-Type-Options': 'nosniff',
};

const url = (path) => new URL(path, SCOPE).href;
// Hashed names never change content: any copy will do. Others are revalidated.
const request = (path) => new Request(url(path), { cache: SITE.hashed.includes(path) ? 'default' : 'no-cache' });

self.addEventListener('install', (event) => {
  if (!SITE) { self.skipWaiting(); return; }  // the unbuilt template: see 'activate'
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // A content-hashed file already there (the model: the page puts its own download of it
    // here, lib/offline.js keepDownload) is not fetched again.
    const shell = [];
    for (const path of SITE.shell) if (!SITE.hashed.includes(path) || !(await cache.match(url(path)))) shell.push(path);
    await cache.addAll(shell.map(request));
    // The engine build(s) an older version ran here: the new one is fetched now, so an
    // update never leaves the page without an offline engine.
    const used = new Set();
    for (const name of await caches.keys()) {
      if (!name.startsWith('neurolens-') || name === CACHE) continue;
      for (const key of await (await caches.open(name)).keys()) {
        const path = key.url.startsWith(SCOPE) ? key.url.slice(SCOPE.length) : '';
        const build = Object.keys(SITE.builds).find((b) => path.startsWith(`${b}/`));
        if (build) used.add(build);
      }
    }
    await Promise.all([...used].map((build) => keepBuild(build).catch(() => {})));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('neurolens-') && name !== CACHE) await caches.delete(name);
    }
    // web/sw.js itself reached a browser that had a built site's worker here (the development
    // server now serves this origin): step aside, so the page comes from web/ again.
    if (!SITE) { await self.registration.unregister(); return; }
    await self.clients.claim();
  })());
});

async function keepBuild(build) {
  const files = SITE?.builds[build];
  if (!files) return false;
  const cache = await caches.open(CACHE);
  const missing = [];
  for (const path of files) if (!(await cache.match(url(path)))) missing.push(path);
  await cache.addAll(missing.map(request));
  return true;
}

self.addEventListener('message', (event) => {
  const { type, builds = [] } = event.data ?? {};
  if (type === 'skip-waiting') self.skipWaiting();
  else if (type === 'keep-build') {
    // kept: the running build is in the cache (a build this site lacks is no failure)
    event.waitUntil(Promise.all(builds.map((b) => keepBuild(b))).then(([kept]) =>
      event.source?.postMessage({ type: 'build-kept', builds, kept, version: VERSION }),
    (error) => event.source?.postMessage({ type: 'build-kept', builds, kept: false, error: String(error) })));
  }
});

function withHeaders(response) {
  if (response.type === 'opaque' || response.type === 'opaqueredirect' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

async function answer(event) {
  const req = event.request;
  const cache = await caches.open(CACHE);
  let found = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
  if (!found && req.mode === 'navigate') found = await cache.match(url('./'));
  if (found) return found;
  const response = await fetch(req);
  // Only what this build ships is kept (the model, the engine builds, the scan module...).
  if (response.ok && response.type === 'basic') {
    await cache.put(req, response.clone()).catch(() => {});
  }
  return response;
}

// Only this build's own files (and navigations to the page) are answered; anything else on the
// origin (another app beside it, a newer file) goes to the network untouched.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (!SITE || req.method !== 'GET' || !req.url.startsWith(SCOPE) || req.headers.has('range')) return;
  const path = new URL(req.url).pathname.slice(new URL(SCOPE).pathname.length);
  if (!SITE.files.includes(path)) return;
  event.respondWith(answer(event).then(withHeaders));
});
