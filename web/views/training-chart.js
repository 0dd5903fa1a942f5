// The live fine-tuning chart: running training loss and accuracy per batch, validation
// accuracy per epoch, against (fractional) epochs. Redraws at most once per animation frame.
import { h } from '../lib/dom.js';
import { drawLineChart } from '../lib/charts.js';

export class TrainingChart {
  constructor() {
    this.canvas = h('canvas', { class: 'chart', id: 'finetune-chart' });
    this.reset(1);
  }

  reset(epochs) {
    this.epochs = epochs;
    this.loss = [];
    this.accuracy = [];
    this.validation = [];
    this.schedule();
  }

  addBatch(p) {
    const x = p.epoch - 1 + p.batch / p.batches;
    this.loss.push([x, p.loss]);
    this.accuracy.push([x, p.accuracy]);
    this.schedule();
  }

  addEpoch(e) {
    if (e.hasValidation) this.validation.push([e.epoch, e.validationAccuracy]);
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      drawLineChart(this.canvas, [
        { name: 'loss', colour: '#2f5fd0', points: [[0, this.loss[0]?.[1] ?? 0], ...this.loss], axis: 'left' },
        { name: 'training accuracy', colour: '#e69500', points: this.accuracy, axis: 'right' },
        { name: 'validation accuracy', colour: '#3a9d5d', points: this.validation, axis: 'right', markers: true },
      ], { xLabel: `epoch (of ${this.epochs})`, leftLabel: 'loss (blue)', rightLabel: 'accuracy: training (orange), validation (green)' });
    });
  }
}
