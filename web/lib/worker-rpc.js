// The request/reply protocol between a page and its workers (the page's engine worker and the
// benchmark's NeuroLens and TensorFlow.js workers), both sides in one place:
//   page -> worker  {id, type, payload}            (buffers the caller lists are transferred)
//   worker -> page  {id, progress}                  any number of times, for long jobs
//                   {id, ok: true, result}          typed arrays in the result are transferred
//                   {id, ok: false, error, fatal}   error: the message (the C++ one for engine errors)
// On the page each request is a Promise: the result, or a thrown Error with the worker's
// message. Terminating the worker is the way to cancel: every open request is rejected.

// Worker side. jobs: {type: async (payload, progress) => result}. Call once, at the top of
// the worker script, so that no message arrives before the handler is in place.
export function answerRequests(jobs) {
  self.onmessage = async ({ data: { id, type, payload } }) => {
    try {
      const job = jobs[type];
      if (!job) throw new Error(`unknown request type '${type}'`);
      const progress = (p) => self.postMessage({ id, progress: p });
      const result = await job(payload ?? {}, progress);
      self.postMessage({ id, ok: true, result }, [...new Set(ownedBuffers(result))]);
    } catch (error) {
      // A trap or abort (WebAssembly.RuntimeError) leaves a wasm module unusable: the page's
      // side should stop this worker rather than send it more work.
      const fatal = error instanceof WebAssembly.RuntimeError;
      self.postMessage({ id, ok: false, fatal, error: error instanceof Error ? error.message : String(error) });
    }
  };
}

// Results hold copies the worker made (Embind copies out of the wasm heap): hand their
// buffers over instead of cloning them. Shared memory (a threaded build's heap) is never
// transferable, and is not an ArrayBuffer.
function ownedBuffers(value, found = []) {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer) found.push(value.buffer);
  } else if (Array.isArray(value)) value.forEach((v) => ownedBuffers(v, found));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => ownedBuffers(v, found));
  return found;
}

// Page side: requests to one worker. onCrash(detail) runs when the worker can no longer answer
// (an uncaught error, or a fatal reply); by default the worker is terminated, failing every
// open request with that detail.
export class WorkerRpc {
  constructor(worker, { onCrash } = {}) {
    this.worker = worker;
    this.pending = new Map();
    this.idleWaiters = [];
    this.nextId = 1;
    this.stopped = null;
    this.onCrash = onCrash ?? ((detail) => this.terminate(`the worker crashed (${detail})`));
    worker.addEventListener('message', (event) => this.receive(event.data));
    worker.addEventListener('error', (event) => {
      event.preventDefault?.();  // handled here: not an uncaught error of the page
      this.onCrash(event.message || 'the worker failed to start');
    });
  }

  // -> Promise of the result. transfer: buffers of the payload to hand over (the caller must
  // not use them afterwards). onProgress(p) gets the job's progress messages.
  request(type, payload = {}, { transfer = [], onProgress } = {}) {
    if (this.stopped) return Promise.reject(new Error(this.stopped));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, type, payload }, transfer);
    });
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
    if (fatal) this.onCrash(error);
    this.notifyIfIdle();
  }

  // -> Promise resolved once no request is open (at once when none is).
  whenIdle() {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
  }

  notifyIfIdle() {
    if (this.pending.size > 0) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  // Stops the worker at once, whatever it is doing; open requests fail with `reason`.
  terminate(reason = 'cancelled') {
    this.worker.terminate();
    this.stopped ??= reason;
    for (const job of this.pending.values()) job.reject(new Error(reason));
    this.pending.clear();
    this.notifyIfIdle();
  }
}
