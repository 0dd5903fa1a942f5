#!/usr/bin/env node
// Small static file server for the NeuroLens web page (no dependencies).
//
//   node scripts/serve.mjs [--port N] [--host H] [--wasm-dir DIR | --site DIR]
//                                       (default 127.0.0.1:8080; port 0 = any free)
//
// Mounts:  /              -> web/
//          /wasm/         -> build/wasm/         (only .js/.mjs/.wasm/.map files at top level)
//          /wasm-threads/ -> build/wasm-threads/ (same; SIMD + pthreads build, if built)
//          /wasm-nosimd/  -> build/wasm-nosimd/  (same; the scalar fallback build, if built)
//          /scans/        -> build/wasm/         (only neurolens-scans.js/.wasm: the DICOM/NIfTI module,
//                                                 fetched by the page's worker on the first scan)
//          /model/        -> model/
// --wasm-dir DIR serves the three builds from DIR/wasm/, DIR/wasm-threads/, DIR/wasm-nosimd/
// instead of build/ (scripts/serve: copies it makes once each build has finished).
// --site DIR serves only DIR, a site made by scripts/build-site (scripts/serve: build/site).
// Every response carries COOP/COEP (so the page is cross-origin isolated and may use
// SharedArrayBuffer/pthreads) and a strict Content-Security-Policy. Paths that escape a mount
// (.., encoded slashes, symlinks pointing outside) are refused; anything else missing is a 404.
//
// Also importable (e.g. by tests/e2e): `const { server, url } = await startServer({ port: 0 })`.
import http from 'node:http';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SECURITY_HEADERS = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // web/index.html's meta policy, plus what a meta tag cannot carry (frame-ancestors)
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; child-src 'self' blob:; " +
    "connect-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; font-src 'self'; " +
    "media-src 'self'; manifest-src 'self'; frame-src 'none'; object-src 'none'; base-uri 'none'; " +
    "form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
});

export const MIME_TYPES = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.bmp': 'image/bmp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.bin': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.ckpt': 'application/octet-stream',
});

export function defaultMounts(root = REPO_ROOT, { wasmDir = path.join(root, 'build') } = {}) {
  const buildFiles = /^[^/]+\.(js|mjs|wasm|map)$/;
  return [
    { prefix: '/wasm/', dir: path.join(wasmDir, 'wasm'), allow: buildFiles },
    { prefix: '/wasm-threads/', dir: path.join(wasmDir, 'wasm-threads'), allow: buildFiles },
    { prefix: '/wasm-nosimd/', dir: path.join(wasmDir, 'wasm-nosimd'), allow: buildFiles },
    // The scan module has no SIMD and no threads: one copy serves every engine build.
    { prefix: '/scans/', dir: path.join(wasmDir, 'wasm'), allow: /^neurolens-scans\.(js|wasm)$/ },
    { prefix: '/model/', dir: path.join(root, 'model') },
    { prefix: '/', dir: path.join(root, 'web'), index: 'index.html' },
  ];
}

// A built site (scripts/build-site): one directory, exactly as it would be deployed.
export function siteMounts(dir) {
  return [{ prefix: '/', dir: path.resolve(dir), index: 'index.html' }];
}

// The benchmark page (scripts/bench) adds these in front of defaultMounts: /bench/ -> bench/,
// and the TensorFlow.js builds it compares against, from node_modules. Its workers load the
// page's worker protocol and engine loader from /lib/ (web/lib/). TensorFlow.js
// evaluates strings as code and its threads load their script from blob: URLs, so the bench
// page (only) is allowed 'unsafe-eval' and blob: scripts.
export function benchMounts(root = REPO_ROOT) {
  const tf = path.join(root, 'node_modules', '@tensorflow');
  const headers = { 'Content-Security-Policy': SECURITY_HEADERS['Content-Security-Policy'].replace("'wasm-unsafe-eval'", "'unsafe-eval' blob:") };
  return [
    { prefix: '/bench/', dir: path.join(root, 'bench'), index: 'index.html', headers },
    { prefix: '/vendor/tfjs/', dir: path.join(tf, 'tfjs', 'dist'), allow: /^tf\.min\.js(\.map)?$/ },
    { prefix: '/vendor/tfjs-backend-wasm/', dir: path.join(tf, 'tfjs-backend-wasm', 'dist'),
      allow: /^(tf-backend-wasm\.min\.js(\.map)?|tfjs-backend-wasm[a-z-]*\.wasm)$/ },
    // ONNX Runtime Web's wasm backend (SIMD, threaded build; it runs single-threaded when asked).
    { prefix: '/vendor/ort/', dir: path.join(root, 'node_modules', 'onnxruntime-web', 'dist'),
      allow: /^(ort\.wasm\.min\.mjs(\.map)?|ort-wasm-simd-threaded\.(mjs|wasm))$/ },
  ];
}

function contentType(file) {
  return MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

function isInside(dir, p) {
  return p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

// Map a URL path to a file inside a mount, or return null. Never follows a path out of a mount.
async function resolveFile(mounts, urlPath) {
  const mount = mounts.find((m) => urlPath.startsWith(m.prefix) || urlPath + '/' === m.prefix);
  if (!mount) return null;
  let rel;
  try {
    rel = decodeURIComponent(urlPath.slice(mount.prefix.length));
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.includes('\\')) return null;
  const segments = rel.split('/');
  if (segments.some((s) => s === '..' || s === '.')) return null;
  if (mount.allow && !mount.allow.test(rel)) return null;

  const base = path.resolve(mount.dir);
  let file = path.resolve(base, '.' + path.sep + rel);
  if (!isInside(base, file)) return null;
  let st;
  try {
    st = await fsp.stat(file);
    if (st.isDirectory()) {
      if (!mount.index) return null;
      file = path.join(file, mount.index);
      st = await fsp.stat(file);
    }
    if (!st.isFile()) return null;
    // Symlinks must not lead outside the mount either.
    const [realBase, realFile] = await Promise.all([fsp.realpath(base), fsp.realpath(file)]);
    if (!isInside(realBase, realFile)) return null;
  } catch {
    return null;
  }
  return { file, size: st.size, mtime: st.mtime, headers: mount.headers ?? {} };
}

function send(res, status, body, headers = {}) {
  const data = Buffer.from(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': data.length,
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : data);
}

export function createServer({ mounts = defaultMounts(), log = false } = {}) {
  return http.createServer(async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(res, 405, 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
        return;
      }
      let urlPath;
      try {
        urlPath = new URL(req.url, 'http://localhost').pathname;
      } catch {
        send(res, 400, 'Bad Request\n');
        return;
      }
      const found = await resolveFile(mounts, urlPath);
      if (!found) {
        if (log) console.log(`404 ${req.method} ${req.url}`);
        send(res, 404, 'Not Found\n');
        return;
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        ...found.headers,
        'Content-Type': contentType(found.file),
        'Content-Length': found.size,
        'Last-Modified': found.mtime.toUTCString(),
        'Cache-Control': 'no-cache',
      });
      if (log) console.log(`200 ${req.method} ${req.url}`);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = fs.createReadStream(found.file);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
    } catch (err) {
      if (!res.headersSent) send(res, 500, 'Internal Server Error\n');
      else res.destroy();
      if (log) console.error(err);
    }
  });
}

export async function startServer({ port = 8080, host = '127.0.0.1', mounts, log = false } = {}) {
  const server = createServer({ mounts, log });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  const shownHost = host === '127.0.0.1' || host === '::1' || host === '0.0.0.0' ? 'localhost' : host;
  return { server, port: actual, url: `http://${shownHost}:${actual}/` };
}

function parseArgs(argv) {
  const opts = { port: 8080, host: '127.0.0.1', log: false, wasmDir: undefined, site: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port' || a === '-p') opts.port = Number(value());
    else if (a.startsWith('--port=')) opts.port = Number(a.slice(7));
    else if (a === '--host') opts.host = value();
    else if (a.startsWith('--host=')) opts.host = a.slice(7);
    else if (a === '--log') opts.log = true;
    else if (a === '--wasm-dir') opts.wasmDir = path.resolve(value());
    else if (a.startsWith('--wasm-dir=')) opts.wasmDir = path.resolve(a.slice(11));
    else if (a === '--site') opts.site = path.resolve(value());
    else if (a.startsWith('--site=')) opts.site = path.resolve(a.slice(7));
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/serve.mjs [--port N] [--host H] [--log] [--wasm-dir DIR | --site DIR]');
      process.exit(0);
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error('--port must be an integer in 0..65535');
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`serve: ${err.message}`);
    process.exit(2);
  }
  const { wasmDir, site, ...serverOpts } = opts;
  const mounts = site ? siteMounts(site) : defaultMounts(REPO_ROOT, { wasmDir });
  const { url } = await startServer({ ...serverOpts, mounts });
  console.log(`NeuroLens is served at ${url}  (Ctrl-C to stop)`);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
}
