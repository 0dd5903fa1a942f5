// Shared by both benchmark workers (loaded with importScripts by the classic TensorFlow.js
// worker and as a side-effect import by the module NeuroLens worker, hence no exports):
// self.serveJobs(jobs) answers {id, type, payload} with {id, ok, result | error}.
self.median = function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

self.serveJobs = function serveJobs(jobs) {
  self.onmessage = async ({ data: { id, type, payload } }) => {
    try {
      if (!jobs[type]) throw new Error(`unknown job '${type}'`);
      self.postMessage({ id, ok: true, result: await jobs[type](payload ?? {}) });
    } catch (error) {
      self.postMessage({ id, ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  };
};
