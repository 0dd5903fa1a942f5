// WorkerRpc.whenIdle (what the page's offline copy waits for, with the model's warm-up): run
// against a real Worker-like endpoint, Node's MessagePort, answered by the worker side's own
// answerRequests loop in a worker thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WorkerRpc } from '../../web/lib/worker-rpc.js';

// A worker thread that runs answerRequests with a job that waits until told to finish.
function startWorker() {
  const source = `
    const { parentPort } = require('node:worker_threads');
    globalThis.self = { postMessage: (m, t) => parentPort.postMessage(m, t) };
    import(${JSON.stringify(new URL('../../web/lib/worker-rpc.js', import.meta.url).href)}).then(({ answerRequests }) => {
      const gates = new Map();
      answerRequests({
        wait: ({ name }) => new Promise((resolve) => gates.set(name, resolve)),
        open: ({ name }) => { gates.get(name)?.(name); return true; },
      });
      parentPort.on('message', (data) => self.onmessage({ data }));
      parentPort.postMessage({ started: true });
    });`;
  const worker = new Worker(source, { eval: true });
  // WorkerRpc listens with addEventListener('message' | 'error', fn(event)).
  const endpoint = {
    postMessage: (m, t) => worker.postMessage(m, t),
    addEventListener: (type, fn) => worker.on(type, (data) => fn(type === 'message' ? { data } : data)),
    terminate: () => worker.terminate(),
  };
  return { worker, endpoint, started: new Promise((resolve) => worker.once('message', resolve)) };
}

test('whenIdle waits for every open request, and for none when none is open', async () => {
  const { endpoint, started } = startWorker();
  await started;
  const rpc = new WorkerRpc(endpoint);
  try {
    await rpc.whenIdle();  // nothing open: at once
    let idle = false;
    const waiting = rpc.request('wait', { name: 'a' });
    const whenIdle = rpc.whenIdle().then(() => { idle = true; });
    await rpc.request('open', { name: 'nothing' });  // a round trip: the worker has seen 'wait'
    assert.equal(idle, false, 'idle while a request is still open');
    await rpc.request('open', { name: 'a' });
    assert.equal(await waiting, 'a');
    await whenIdle;
    assert.equal(idle, true);
  } finally {
    rpc.terminate();
  }
});

test('whenIdle resolves when the worker is terminated with requests open', async () => {
  const { endpoint, started } = startWorker();
  await started;
  const rpc = new WorkerRpc(endpoint);
  const waiting = rpc.request('wait', { name: 'b' });
  const whenIdle = rpc.whenIdle();
  rpc.terminate('stopped');
  await assert.rejects(waiting, /stopped/);
  await whenIdle;
});
