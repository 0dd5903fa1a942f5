// Readable names and colours for the model's class names (as they appear in the model file).

const READABLE = {
  glioma: 'Glioma',
  meningioma: 'Meningioma',
  notumor: 'No tumor',
  pituitary: 'Pituitary tumor',
};

const COLOURS = {
  glioma: '#d9534f',
  meningioma: '#e69500',
  notumor: '#3a9d5d',
  pituitary: '#5b6fd6',
};

export function readableClass(name) {
  return READABLE[name] ?? name;
}

export function classColour(name, index = 0) {
  return COLOURS[name] ?? `hsl(${(index * 83) % 360} 55% 50%)`;
}

// Which class a folder name stands for: the labelled-folder rule, which the command line
// follows too (src/train/labelled_folders.{h,cpp}: the two copies, and the readable names in
// READABLE and the ALIASES here, must match -- change both together). A folder names class c
// when its name is exactly c; else when its key (its ASCII letters, lower-cased: "No Tumor" ->
// "notumor") is not empty and equals the key of c or of c's readable name for exactly one
// class; else when its key is an alias of c. null when it names none.
const ALIASES = new Map([
  ['gliomatumor', 'glioma'], ['meningiomatumor', 'meningioma'],
  ['notumour', 'notumor'], ['normal', 'notumor'],
  ['pituitarytumor', 'pituitary'], ['pituitarytumour', 'pituitary'],
]);

const folderKey = (name) => name.replace(/[^A-Za-z]/g, '').toLowerCase();

export function classFromFolderName(folder, classes) {
  if (classes.includes(folder)) return folder;
  const key = folderKey(folder);
  if (!key) return null;
  const named = classes.filter((c) => key === folderKey(c) || key === folderKey(readableClass(c)));
  if (named.length > 0) return named.length === 1 ? named[0] : null;
  const alias = ALIASES.get(key);
  return alias !== undefined && classes.includes(alias) ? alias : null;
}
