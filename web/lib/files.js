// Gathering files from a drop, a paste or a file picker, folders included, as
// [{file, path}] where path is relative to what was dropped ("glioma/scan1.jpg").
import { classFromFolderName } from './labels.js';

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () => reader.readEntries((batch) => {
      if (batch.length === 0) resolve(all);
      else { all.push(...batch); next(); }
    }, reject);
    next();
  });
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + file.name });
  } else if (entry.isDirectory) {
    const children = await readAllEntries(entry.createReader());
    children.sort((a, b) => a.name.localeCompare(b.name));
    for (const child of children) await walk(child, `${prefix}${entry.name}/`, out);
  }
}

// Must be called synchronously from the drop/paste handler: the browser empties the
// DataTransfer once the handler returns, so the entries are taken before any await.
export function filesFromDataTransfer(dataTransfer) {
  const items = [...(dataTransfer.items ?? [])].filter((item) => item.kind === 'file');
  const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
  const plain = items.map((item) => item.getAsFile());
  if (items.length === 0) {
    return Promise.resolve([...(dataTransfer.files ?? [])].map((file) => ({ file, path: file.name })));
  }
  return (async () => {
    const out = [];
    for (let i = 0; i < items.length; ++i) {
      if (entries[i]) await walk(entries[i], '', out);
      else if (plain[i]) out.push({ file: plain[i], path: plain[i].name || 'pasted-image' });
    }
    return out;
  })();
}

export function filesFromInput(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

// The class of a labelled file: the nearest enclosing folder whose name is a class
// (glioma/, No tumor/, notumor/ ...); null when no folder names one.
export function labelFromPath(path, classes) {
  const folders = path.split('/').slice(0, -1).reverse();
  for (const folder of folders) {
    const c = classFromFolderName(folder, classes);
    if (c) return c;
  }
  return null;
}

// Hidden files and OS clutter that a dropped folder tends to contain.
export function isClutter(path) {
  const name = path.split('/').pop();
  return name.startsWith('.') || name === 'Thumbs.db' || name === 'desktop.ini';
}
