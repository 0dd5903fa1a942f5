// End-to-end harness: serves the page with scripts/serve.mjs on a free port, drives Debian's
// Chromium through playwright-core, records every request, and writes screenshots to
// build/e2e-screenshots/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer as serve, defaultMounts } from '../../../scripts/serve.mjs';
import { writeTestModelDir } from './test-model.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SCREENSHOTS = path.join(ROOT, 'build/e2e-screenshots');

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

// Serves the page in this process through scripts/serve.mjs (same mounts and headers as
// `scripts/serve`) on a free port. modelDir replaces model/ (the directory holding
// neurolens.safetensors); by default the tests use a small model they write themselves.
// builds: which engine builds to serve (the page takes the best one it can load), e.g.
// ['wasm'] for the single-threaded SIMD build as in a browser where the page cannot be
// cross-origin isolated, ['wasm-nosimd'] for the plain-wasm fallback. isolated: false serves
// the page without Cross-Origin-Opener-Policy (as a host that cannot set it would), so it is
// not cross-origin isolated: no SharedArrayBuffer, hence no threads.
export async function startServer({ modelDir, builds = ['wasm', 'wasm-threads', 'wasm-nosimd'], isolated = true } = {}) {
  const ownDir = modelDir ? null : writeTestModelDir(path.join(ROOT, `build/e2e/model-${process.pid}`));
  modelDir ??= ownDir;
  // NEUROLENS_E2E_WASM_DIR, _WASM_THREADS_DIR, _WASM_NOSIMD_DIR: test other builds than
  // build/wasm, build/wasm-threads and build/wasm-nosimd (e.g. a private build dir).
  const override = { '/wasm/': process.env.NEUROLENS_E2E_WASM_DIR, '/wasm-threads/': process.env.NEUROLENS_E2E_WASM_THREADS_DIR,
                     '/wasm-nosimd/': process.env.NEUROLENS_E2E_WASM_NOSIMD_DIR, '/scans/': process.env.NEUROLENS_E2E_WASM_DIR };
  let mounts = defaultMounts(ROOT).map((m) => {
    if (m.prefix === '/model/') return { ...m, dir: modelDir };
    if (override[m.prefix]) return { ...m, dir: path.resolve(ROOT, override[m.prefix]) };
    return m;
  });
  if (override['/wasm-threads/'] && !mounts.some((m) => m.prefix === '/wasm-threads/')) {
    const wasm = mounts.find((m) => m.prefix === '/wasm/');
    mounts = [{ ...wasm, prefix: '/wasm-threads/', dir: path.resolve(ROOT, override['/wasm-threads/']) }, ...mounts];
  }
  mounts = mounts.filter((m) => !/^\/wasm[^/]*\/$/.test(m.prefix) || builds.includes(m.prefix.slice(1, -1)));
  if (!isolated) mounts = mounts.map((m) => (m.prefix === '/' ? { ...m, headers: { ...m.headers, 'Cross-Origin-Opener-Policy': 'unsafe-none' } } : m));
  const { server, port } = await serve({ port: 0, host: '127.0.0.1', mounts });
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => {
        if (ownDir) fs.rmSync(ownDir, { recursive: true, force: true });
        resolve();
      });
    }),
  };
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_FLAGS });
}

// A browser of its own on a profile directory (not incognito, as Chromium's installability
// check wants), as a context: close it to end the browser.
export async function launchPersistentContext(userDataDir) {
  return chromium.launchPersistentContext(userDataDir, { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_FLAGS, viewport: { width: 1280, height: 900 } });
}

// A page whose every request (the worker's included) and console error is recorded.
export async function openPage(browser, origin, { context: existing } = {}) {
  const context = existing ?? await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const requests = [];
  const errors = [];
  context.on('request', (request) => requests.push(request.url()));
  const page = await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
  const ready = await page.evaluate(() => document.body.dataset.ready);
  if (ready !== 'true') {
    const status = await page.textContent('#status');
    throw new Error(`the page did not start: ${status}\n${errors.join('\n')}`);
  }
  return { context, page, requests, errors };
}

// Requests that went anywhere but the page's own origin (blob: and data: URLs stay local).
export function foreignRequests(requests, origin) {
  return requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('blob:') && !url.startsWith('data:'));
}

export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Chooses files on a file input: [{name, mimeType, buffer}].
export async function chooseFiles(page, selector, files) {
  await page.setInputFiles(selector, files.map((f) => ({ mimeType: 'application/octet-stream', ...f })));
}

// Waits until no classify card is pending and returns every card's state.
export async function settledCards(page, expected, timeout = 60000) {
  await page.waitForFunction((n) => {
    const cards = [...document.querySelectorAll('#cards .card')];
    return cards.length >= n && cards.every((c) => c.dataset.state !== 'pending');
  }, expected, { timeout });
  return page.$$eval('#cards .card', (cards) => cards.map((c) => ({
    file: c.dataset.file, state: c.dataset.state, prediction: c.dataset.prediction ?? null,
    error: c.querySelector('.error')?.textContent ?? null,
    confidence: c.querySelector('.confidence')?.textContent ?? null,
    bars: [...c.querySelectorAll('.bars li')].map((li) => li.querySelector('.bar-label').textContent),
  })));
}
