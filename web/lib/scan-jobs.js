// The worker's scan jobs: DICOM and NIfTI files read by the scan module (neurolens-scans.js,
// built by the `wasm` preset, served at /scans/) and their slices classified by the engine.
// Imported by ../worker.js only when the first scan arrives, so a page that only ever sees
// JPEG and PNG images never fetches this file or the scan module.
//
// A scan set is one drop's scan files, read together (DICOM series are grouped across files);
// it stays in the worker, under its id, until scanClose. The page asks for slices (through a
// window) and for slice classifications by set, volume index and slice index.

// The module, fetched from this page's own origin the first time it is needed.
let scanModule = null;
function loadScanModule() {
  if (!scanModule) {
    const url = new URL('../scans/neurolens-scans.js', import.meta.url).href;
    scanModule = import(url).then(({ default: createNeuroLensScans }) =>
      createNeuroLensScans({ locateFile: (file) => new URL(file, url).href }));
    scanModule.catch(() => { scanModule = null; });  // a later scan may try again
  }
  return scanModule;
}

const sets = new Map();
let nextSet = 1;

function volumeOf(set, volume) {
  const entry = sets.get(set);
  if (!entry) throw new Error(`scan set ${set} is not loaded in this engine (it was restarted)`);
  const v = entry.volumes[volume];
  if (!v) throw new Error(`scan set ${set} has no volume ${volume}`);
  return { reader: entry.reader, v };
}

function classifySlice(engine, reader, v, volume, z, gradcam) {
  const grey = reader.slice(volume, z);
  return engine.classifyGrey(v.width, v.height, grey, { gradcam });
}

export function scanJobs(enginePromise) {
  return {
    // files: [{name, bytes}] -> {set (null when nothing was read), kinds, volumes, problems, skipped}
    async scanOpen({ files }) {
      const S = await loadScanModule();
      const reader = new S.ScanReader();
      try {
        const kinds = files.map(({ name, bytes }) => reader.add(name, bytes));
        const result = reader.finish();
        let set = null;
        if (result.volumes.length > 0) {
          set = nextSet++;
          sets.set(set, { reader, volumes: result.volumes });
        } else {
          reader.delete();
        }
        return { set, kinds, ...result };
      } catch (error) {
        reader.delete();
        throw error;
      }
    },

    // -> {z, width, height, grey}: slice z through `window` ({center, width, function}), or the
    // file's window (else the automatic one) when none is given.
    async scanSlice({ set, volume, z, window }) {
      const { reader, v } = volumeOf(set, volume);
      const grey = window ? reader.slice(volume, z, window) : reader.slice(volume, z);
      return { z, width: v.width, height: v.height, grey };
    },

    // Classifies slices (through the file's or the automatic window, as the model sees them)
    // -> [{z, probabilities, classIndex, className, uncertain, outOfDistribution, outlierScore?}];
    // progress {done, total} after each.
    async scanClassify({ set, volume, slices }, progress) {
      const { engine } = await enginePromise;
      const { reader, v } = volumeOf(set, volume);
      const results = [];
      for (const z of slices) {
        const r = classifySlice(engine, reader, v, volume, z, false);
        results.push({ z, probabilities: r.probabilities, classIndex: r.classIndex, className: r.className,
                       uncertain: r.uncertain, outOfDistribution: r.outOfDistribution, outlierScore: r.outlierScore });
        progress({ done: results.length, total: slices.length });
      }
      return results;
    },

    // One slice's whole classification (classify()'s result, with Grad-CAM on request).
    async scanClassifySlice({ set, volume, z, gradcam }) {
      const { engine } = await enginePromise;
      const { reader, v } = volumeOf(set, volume);
      return { z, ...classifySlice(engine, reader, v, volume, z, Boolean(gradcam)) };
    },

    async scanClose({ set }) {
      const entry = sets.get(set);
      if (entry) {
        sets.delete(set);
        entry.reader.delete();
      }
      return { closed: Boolean(entry) };
    },
  };
}
