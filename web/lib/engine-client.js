// The page's side of the worker protocol: request(type, payload) -> Promise of the result.
// The worker can be terminated (cancelling whatever it runs) and restarted; the `onStart`
// hook then puts the model in use back into the new worker before any queued request runs.
// A crashed worker (an uncaught error, or a wasm trap that leaves the module unusable) is
// restarted the same way, so the page always ends up with a working engine.

export class EngineClient {
  constructor({ onStart } = {}) {
    this.onStart = onStart;
    this.pending = new Map();
    this.nextId = 1;
    this.start();
  }

  start() {
    this.worker = new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.restart(`the engine crashed (${event.message || 'worker error'}) and was restarted; try again`);
    };
    this.ready = this.onStart ? Promise.resolve().then(() => this.onStart(this)) : Promise.resolve();
    this.ready.catch(() => {});  // surfaced through request() callers
  }

  // Stops the worker at once (cancelling any job) and starts a fresh one.
  restart(reason = 'cancelled') {
    this.restarts = (this.restarts ?? 0) + 1;
    this.worker.terminate();
    this.failAll(reason);
    this.start();
    return this.ready;
  }

  // Sends a request without waiting for `ready` (used by onStart itself).
  send(type, payload = {}, { transfer = [], onProgress } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, type, payload }, transfer);
    });
  }

  async request(type, payload, options) {
    await this.ready;
    return this.send(type, payload, options);
  }

  receive({ id, ok, result, error, progress, fatal }) {
    const job = this.pending.get(id);
    if (!job) return;
    if (progress !== undefined) {
      job.onProgress?.(progress);
      return;
    }
    this.pending.delete(id);
    if (ok) job.resolve(result);
    else job.reject(new Error(error));
    if (fatal) this.restart(`the engine crashed (${error}) and was restarted; try again`);
  }

  failAll(message) {
    for (const job of this.pending.values()) job.reject(new Error(message));
    this.pending.clear();
  }
}
