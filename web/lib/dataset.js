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
