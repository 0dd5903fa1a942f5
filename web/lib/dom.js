// A tiny element builder: h('div', {class: 'card', dataset: {x: 1}, onclick}, child, ...).

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  return appendAll(el, children);
}

function appendAll(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Empties el, then appends the children (null/undefined/false are skipped).
export function clear(el, ...children) {
  while (el.firstChild) el.firstChild.remove();
  return appendAll(el, children);
}

// Appends the children, skipping null/undefined/false.
export function add(el, ...children) {
  return appendAll(el, children);
}

export function percent(p, digits = 1) {
  return `${(100 * p).toFixed(digits)}%`;
}

// Offers bytes as a download (a blob: URL that never leaves the browser).
export function download(bytes, filename, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h('a', { href: url, download: filename, style: { display: 'none' } });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
