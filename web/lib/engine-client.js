// The page's engine: the worker (../worker.js) behind a WorkerRpc, kept working. It can be
// restarted to cancel whatever it runs; the `onStart` hook then puts the model in use back
// into the new worker before any queued request runs. A crashed worker (an uncaught error, or
// a wasm trap that leaves the module unusable) is restarted the same way, so the page always
// ends up with a working engine.
import { WorkerRpc } from './worker-rpc.js';
import { compileBestBuild } from './engine-loader.js';

export class EngineClient {
  constructor({ onStart } = {}) {
    this.onStart = onStart;
    this.restarts = 0;
    this.start();
  }

  start() {
    this.rpc = new WorkerRpc(new Worker(new URL('../worker.js', import.meta.url), { type: 'module' }), {
      onCrash: (detail) => this.restart(`the engine crashed (${detail}) and was restarted; try again`),
    });
    this.worker = this.rpc.worker;  // the end-to-end tests make it crash
    // The engine's .wasm, fetched and compiled here from the start (while the worker's own
    // script arrives) and handed to this worker and to any restarted one: the worker's first
    // request (worker.js).
    this.wasm ??= compileBestBuild().catch(() => ({ name: null, module: null }));
    const rpc = this.rpc;
    this.wasm.then(({ name, module }) => rpc.request('wasm', { build: name, module })).catch(() => {});
    this.ready = this.onStart ? Promise.resolve().then(() => this.onStart(this)) : Promise.resolve();
    this.ready.catch(() => {});  // surfaced through request() callers
  }

  // Stops the worker at once (cancelling any job) and starts a fresh one.
  restart(reason = 'cancelled') {
    this.restarts += 1;
    this.rpc.terminate(reason);
    this.start();
    return this.ready;
  }

  // Sends a request without waiting for `ready` (used by onStart itself).
  send(type, payload, options) {
    return this.rpc.request(type, payload, options);
  }

  async request(type, payload, options) {
    await this.ready;
    return this.send(type, payload, options);
  }

  // Resolves once the engine has nothing to do: the model's warm-up has run and no request is
  // open. For work that can wait for it (the offline copy).
  async idle() {
    await this.request('idle');
    await this.rpc.whenIdle();
  }
}
