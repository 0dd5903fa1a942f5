// NeuroLens: Emscripten 3.1.6's EXPORT_ES6 glue uses CommonJS `require` and `__dirname`
// when it runs under Node. Provide both in module scope (only under Node; no-op in browsers).
var require, __dirname;
if (typeof process == 'object' && typeof process.versions == 'object' && typeof process.versions.node == 'string') {
  const { createRequire } = await import('node:module');
  const { fileURLToPath } = await import('node:url');
  require = createRequire(import.meta.url);
  __dirname = fileURLToPath(new URL('.', import.meta.url));
}
