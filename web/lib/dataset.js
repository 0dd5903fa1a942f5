// A labelled image set from dropped files: each file's class is the nearest enclosing folder
// named after a class. Files outside class folders are set aside with the reason.
import { labelFromPath, isClutter } from './files.js';

export function labelledSet(files, classes) {
  const items = [], skipped = [];
  for (const { file, path } of files) {
    if (isClutter(path)) continue;
    const label = labelFromPath(path, classes);
    if (label) items.push({ file, path, label });
    else skipped.push({ path, reason: 'not inside a folder named after a class' });
  }
  const counts = Object.fromEntries(classes.map((c) => [c, 0]));
  for (const item of items) counts[item.label] += 1;
  return { items, skipped, counts };
}

// Deterministic split: every class keeps about `fraction` of its images for validation
// (at least one when it has two or more), chosen by a seeded shuffle.
export function splitForValidation(items, fraction, seed = 1) {
  let state = seed >>> 0 || 1;
  const random = () => {  // xorshift32: reproducible across browsers
    state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0;
    return state / 2 ** 32;
  };
  const byClass = new Map();
  for (const item of items) {
    if (!byClass.has(item.label)) byClass.set(item.label, []);
    byClass.get(item.label).push(item);
  }
  const train = [], validation = [];
  for (const group of byClass.values()) {
    const shuffled = [...group];
    for (let i = shuffled.length - 1; i > 0; --i) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    const held = group.length < 2 ? 0 : Math.max(1, Math.round(fraction * group.length));
    validation.push(...shuffled.slice(0, held));
    train.push(...shuffled.slice(held));
  }
  return { train, validation };
}
