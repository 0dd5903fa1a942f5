// Learn view (teaching): the network drawn as a diagram of its layers with output shapes and
// parameter counts, the model's confidence settings (calibration temperature, uncertain
// threshold, outlier detector), and the feature maps each layer produces for the current image.
import { h, clear } from '../lib/dom.js';
import { filesFromInput } from '../lib/files.js';
import { groupDigits } from '../lib/format.js';
import { drawFeatureMaps } from './feature-maps.js';

const TYPE_NOTES = {
  conv2d: 'slides small learned filters over the image; each filter makes one feature map',
  relu: 'keeps positive values, zeroes the rest',
  max_pool: 'keeps the strongest response in each window, halving the size',
  avg_pool: 'averages each window',
  global_avg_pool: 'averages each feature map to one number',
  batch_norm: 'rescales each channel to a stable range',
  dense: 'weighs every input to score each output',
  dropout: 'randomly silences units while training (off when classifying)',
  add: 'adds two paths (a residual connection)',
  softmax: 'turns scores into probabilities that sum to 1',
  flip: 'mirrors the image left to right, so the network also sees its mirror image',
};

function shapeText(shape) {
  return shape.slice(1).join(' × ');
}

// The model's confidence settings in a line ('' for an engine that reports none).
function confidenceText(c) {
  if (!c) return '';
  const parts = [c.temperature === 1 ? 'Probabilities as the network gives them (temperature 1)'
    : `Probabilities calibrated: the scores are divided by a temperature of ${+c.temperature.toFixed(3)} before the softmax`];
  if (c.uncertainBelow > 0) parts.push(`answers below ${Math.round(100 * c.uncertainBelow)}% are marked uncertain`);
  parts.push(c.hasOutlierDetector
    ? 'an outlier detector flags images that do not look like brain MRI slices'
    : 'no outlier detector');
  return `${parts.join('; ')}.`;
}

export function mount(section, app) {
  const diagram = h('ol', { class: 'layer-diagram', id: 'layer-diagram' });
  const totals = h('p', { class: 'summary' });
  const confidence = h('p', { class: 'hint', id: 'model-confidence' });
  const layerSelect = h('select', { id: 'feature-layer' });
  const imageName = h('span', { class: 'image-name' }, 'no image yet');
  const picker = h('input', { type: 'file', id: 'learn-file', class: 'visually-hidden' });
  const maps = h('div', { class: 'feature-maps', id: 'feature-maps' });
  const note = h('p', { class: 'hint' });

  section.append(
    h('div', { class: 'intro' }, h('h2', {}, 'How the network sees an image'),
      h('p', {}, 'Each box is one layer, from the input image at the top to the four class ',
        'probabilities at the bottom. Pick a layer to see the feature maps it computes.')),
    h('div', { class: 'learn' },
      h('div', { class: 'learn-diagram' }, totals, confidence, diagram),
      h('div', { class: 'learn-maps' },
        h('div', { class: 'toolbar' },
          h('label', {}, 'Layer ', layerSelect),
          h('label', { class: 'button', for: 'learn-file' }, 'Choose image…'), picker,
          imageName),
        note, maps)));

  function renderDiagram(info) {
    clear(diagram);
    clear(layerSelect);
    diagram.append(h('li', { class: 'layer input' },
      h('span', { class: 'layer-name' }, 'input'),
      h('span', { class: 'layer-shape' }, `${info.input.height} × ${info.input.width} × ${info.input.channels}`)));
    for (const layer of info.layers) {
      const item = h('li', { class: `layer type-${layer.type}`, dataset: { layer: layer.name },
                             title: TYPE_NOTES[layer.type] ?? '' },
        h('span', { class: 'layer-name' }, layer.name),
        h('span', { class: 'layer-type' }, layer.type),
        h('span', { class: 'layer-shape' }, shapeText(layer.outputShape)),
        h('span', { class: 'layer-params' }, layer.params ? `${groupDigits(layer.params)} params` : ''),
        layer.inputs.length > 1 ? h('span', { class: 'layer-inputs' }, `from ${layer.inputs.join(' + ')}`) : null);
      item.addEventListener('click', () => { layerSelect.value = layer.name; refreshMaps(); });
      diagram.append(item);
      layerSelect.append(h('option', { value: layer.name }, `${layer.name} (${layer.type}, ${shapeText(layer.outputShape)})`));
    }
    const firstConv = info.layers.find((l) => l.type === 'conv2d');
    if (firstConv) layerSelect.value = firstConv.name;
    totals.textContent = `${info.layers.length} layers · ${groupDigits(info.parameterCount)} parameters · ` +
      `${(info.flops / 1e6).toFixed(1)} MFLOP per image`;
    confidence.textContent = confidenceText(info.confidence);
  }

  let shown = null;
  async function refreshMaps() {
    const image = app.currentImage;
    const layer = layerSelect.value;
    if (!image || !layer) {
      note.textContent = 'Classify an image (or choose one here) to see its feature maps.';
      return;
    }
    imageName.textContent = image.name;
    const key = `${image.name}|${layer}|${app.model?.label}`;
    if (key === shown) return;
    note.textContent = 'Computing…';
    try {
      const bytes = new Uint8Array(await image.file.arrayBuffer());
      const result = await app.engine.request('featureMaps', { bytes, layer }, { transfer: [bytes.buffer] });
      const desc = TYPE_NOTES[result.type] ? ` — ${TYPE_NOTES[result.type]}` : '';
      note.textContent = `${result.layer} (${result.type})${desc}.`;
      drawFeatureMaps(maps, result);
      shown = key;
    } catch (error) {
      note.textContent = `Could not compute feature maps: ${error.message}`;
      clear(maps);
    }
  }

  layerSelect.addEventListener('change', refreshMaps);
  picker.addEventListener('change', () => {
    const [first] = filesFromInput(picker);
    picker.value = '';
    if (first) { app.currentImage = { name: first.path, file: first.file }; refreshMaps(); }
  });
  app.addEventListener('model', (event) => { renderDiagram(event.detail.info); shown = null; });

  return {
    show: refreshMaps,
    acceptFiles(files) {
      if (files.length === 0) return;
      app.currentImage = { name: files[0].path, file: files[0].file };
      refreshMaps();
    },
  };
}
