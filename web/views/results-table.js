// The results of a batch as a table: sortable by any column (click its header), exportable
// as CSV. Rows are the cards that finished (classified or failed). The Note column and the
// CSV's uncertain / out_of_distribution / outlier_score columns carry the model's confidence.
import { h, clear, percent, download } from '../lib/dom.js';
import { readableClass } from '../lib/labels.js';
import { toCsv, CONFIDENCE_COLUMNS, confidenceFields } from '../lib/csv.js';
import { resultFlag } from './result-card.js';

const NOTES = { ood: 'Does not look like brain MRI', uncertain: 'Uncertain' };

export class ResultsTable {
  constructor() {
    this.cards = [];
    this.classes = [];
    this.sortKey = 'order';
    this.descending = false;
    this.table = h('table', { class: 'results' });
    this.exportButton = h('button', { type: 'button', onclick: () => this.exportCsv() }, 'Export CSV');
    this.root = h('div', { class: 'results-panel', hidden: true },
      h('div', { class: 'results-head' }, h('h2', {}, 'Results'), this.exportButton), this.table);
  }

  columns() {
    return [
      { key: 'order', label: '#', value: (c) => c.order },
      { key: 'file', label: 'File', value: (c) => c.name },
      // As on the card, an image that does not look like a brain MRI slice does not lead with
      // a tumour class: its pick stays visible, in brackets, next to the note saying why.
      { key: 'prediction', label: 'Prediction', value: (c) => {
        if (!c.result) return '';
        const name = readableClass(c.result.className);
        return resultFlag(c.result) === 'ood' ? `(${name})` : name;
      } },
      { key: 'confidence', label: 'Confidence', numeric: true,
        value: (c) => (c.result ? c.result.probabilities[c.result.classIndex] : -1),
        show: (v) => (v < 0 ? '' : percent(v)) },
      ...this.classes.map((name, i) => ({ key: `p:${name}`, label: readableClass(name), numeric: true,
        value: (c) => (c.result ? c.result.probabilities[i] : -1), show: (v) => (v < 0 ? '' : percent(v)) })),
      { key: 'note', label: 'Note', value: (c) => NOTES[resultFlag(c.result)] ?? '' },
      { key: 'ms', label: 'Time (ms)', numeric: true, value: (c) => (c.result ? c.result.milliseconds : -1),
        show: (v) => (v < 0 ? '' : v.toFixed(1)) },
      { key: 'error', label: 'Error', value: (c) => c.error ?? '' },
    ];
  }

  update(cards, classes) {
    this.cards = cards.filter((c) => c.result || c.error);
    this.classes = classes;
    this.root.hidden = this.cards.length === 0;
    this.render();
  }

  sortBy(key) {
    if (this.sortKey === key) this.descending = !this.descending;
    else { this.sortKey = key; this.descending = false; }
    this.render();
  }

  sorted() {
    const column = this.columns().find((c) => c.key === this.sortKey) ?? this.columns()[0];
    const sign = this.descending ? -1 : 1;
    return [...this.cards].sort((a, b) => {
      const x = column.value(a), y = column.value(b);
      const order = typeof x === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
      return sign * order || a.order - b.order;
    });
  }

  render() {
    const columns = this.columns();
    const header = h('tr', {}, columns.map((col) => h('th', {
      scope: 'col', dataset: { key: col.key },
      'aria-sort': col.key === this.sortKey ? (this.descending ? 'descending' : 'ascending') : 'none',
    }, h('button', { type: 'button', onclick: () => this.sortBy(col.key) }, col.label))));
    const rows = this.sorted().map((card) => h('tr', { dataset: { file: card.name, state: card.root.dataset.state } },
      columns.map((col) => {
        const v = col.value(card);
        return h('td', { class: col.numeric ? 'num' : '' }, col.show ? col.show(v) : v);
      })));
    clear(this.table, h('thead', {}, header), h('tbody', {}, rows));
  }

  csv() {
    const header = ['file', 'predicted_class', 'prediction', 'confidence',
                    ...this.classes.map((c) => `p_${c}`), ...CONFIDENCE_COLUMNS, 'milliseconds', 'error'];
    const rows = this.sorted().map((c) => {
      const r = c.result;
      if (!r) return [c.name, '', '', '', ...this.classes.map(() => ''), ...confidenceFields(null), '', c.error];
      return [c.name, r.className, readableClass(r.className), r.probabilities[r.classIndex].toFixed(6),
              ...Array.from(r.probabilities, (p) => p.toFixed(6)), ...confidenceFields(r), r.milliseconds.toFixed(2), ''];
    });
    return toCsv(header, rows);
  }

  exportCsv() {
    download(this.csv(), 'neurolens-results.csv', 'text/csv');
  }
}
