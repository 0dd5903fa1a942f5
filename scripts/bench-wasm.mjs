// Times classify() of one synthetic slice in the wasm module under Node (single-threaded
// SIMD build) and prints JSON {median_ms, mean_ms, runs}. Used by scripts/bench.
//   node scripts/bench-wasm.mjs WASM_DIR MODEL IMAGE [RUNS]
import fs from 'node:fs';
import path from 'node:path';

const [wasmDir, modelPath, imagePath, runsArg] = process.argv.slice(2);
if (!imagePath) {
  console.error('usage: node scripts/bench-wasm.mjs WASM_DIR MODEL IMAGE [RUNS]');
  process.exit(2);
}
const runs = Number(runsArg ?? 50);
const { default: createNeuroLens } = await import(path.resolve(wasmDir, 'neurolens.js'));
const NL = await createNeuroLens({ wasmBinary: fs.readFileSync(path.resolve(wasmDir, 'neurolens.wasm')) });
const engine = new NL.Engine();
try {
  engine.loadModel(new Uint8Array(fs.readFileSync(modelPath)));
  const image = new Uint8Array(fs.readFileSync(imagePath));
  for (let i = 0; i < 5; i++) engine.classify(image, {});  // warm-up: operators created, weights packed
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    engine.classify(image, {});
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((s, t) => s + t, 0) / runs;
  console.log(JSON.stringify({ median_ms: times[Math.floor(runs / 2)], mean_ms: mean, runs }));
} finally {
  engine.delete();
}
