// The model in use, persisted in IndexedDB so a fine-tuned model survives reloads.
// Nothing stored here ever leaves the browser. No entry means "the shipped model".

const DB_NAME = 'neurolens';
const STORE = 'models';
const ACTIVE = 'active';

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transaction(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

// {bytes: Uint8Array, label, savedAt} or null.
export async function loadActiveModel() {
  const entry = await transaction('readonly', (store) => store.get(ACTIVE));
  if (!entry) return null;
  return { ...entry, bytes: new Uint8Array(entry.bytes) };
}

export function saveActiveModel(bytes, label) {
  const copy = bytes.slice().buffer;  // the store keeps its own copy
  return transaction('readwrite', (store) =>
    store.put({ bytes: copy, label, savedAt: new Date().toISOString() }, ACTIVE));
}

export function clearActiveModel() {
  return transaction('readwrite', (store) => store.delete(ACTIVE));
}
