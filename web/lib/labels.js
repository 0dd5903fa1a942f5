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

// Folder names people use for the classes, mapped to the model's class names.
export function classFromFolderName(folder, classes) {
  const key = folder.toLowerCase().replace(/[^a-z]/g, '');
  for (const c of classes) {
    const readable = readableClass(c).toLowerCase().replace(/[^a-z]/g, '');
    if (key === c.toLowerCase() || key === readable) return c;
  }
  const aliases = { notumour: 'notumor', normal: 'notumor', pituitarytumor: 'pituitary',
                    pituitarytumour: 'pituitary', gliomatumor: 'glioma', meningiomatumor: 'meningioma' };
  return classes.includes(aliases[key]) ? aliases[key] : null;
}
