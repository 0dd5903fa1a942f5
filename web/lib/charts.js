// Small canvas charts: a line chart (training curves) and a confusion-matrix heat map.
import { readableClass } from './labels.js';

function hiDpi(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round((width || 640) * ratio)), hgt = Math.max(1, Math.round((height || 240) * ratio));
  if (canvas.width !== w || canvas.height !== hgt) { canvas.width = w; canvas.height = hgt; }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width: w / ratio, height: hgt / ratio };
}

// series: [{name, colour, points: [[x, y], ...], axis: 'left'|'right'}]; the left axis is
// scaled to its data from 0, the right axis is 0..1 (accuracy).
export function drawLineChart(canvas, series, { xLabel = '', leftLabel = '', rightLabel = '' } = {}) {
  const { ctx, width, height } = hiDpi(canvas);
  const pad = { l: 52, r: 44, t: 24, b: 30 };
  ctx.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    ctx.fillStyle = '#5d6678'; ctx.font = '13px system-ui, sans-serif'; ctx.textAlign = 'center';
    ctx.fillText('The training curves appear here once training starts.', width / 2, height / 2);
    return;
  }
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const leftMax = Math.max(1e-6, ...series.filter((s) => s.axis !== 'right').flatMap((s) => s.points.map((p) => p[1])));
  const X = (x) => pad.l + (x / xMax) * (width - pad.l - pad.r);
  const Y = (y, axis) => height - pad.b - (axis === 'right' ? y : y / leftMax) * (height - pad.t - pad.b);
  ctx.strokeStyle = '#d9dee8'; ctx.fillStyle = '#5d6678'; ctx.font = '11px system-ui, sans-serif';
  for (let i = 0; i <= 4; ++i) {
    const y = pad.t + (i / 4) * (height - pad.t - pad.b);
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(width - pad.r, y); ctx.stroke();
    ctx.textAlign = 'right'; ctx.fillText((leftMax * (1 - i / 4)).toFixed(leftMax < 0.1 ? 4 : 2), pad.l - 4, y + 4);
    ctx.textAlign = 'left'; ctx.fillText(`${100 - 25 * i}%`, width - pad.r + 4, y + 4);
  }
  ctx.textAlign = 'center'; ctx.fillText(xLabel, width / 2, height - 6);
  ctx.textAlign = 'left'; ctx.fillText(leftLabel, pad.l, 14);
  ctx.textAlign = 'right'; ctx.fillText(rightLabel, width - pad.r, 14);
  for (const s of series) {
    ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = 2;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y, s.axis)) : ctx.moveTo(X(x), Y(y, s.axis))));
    ctx.stroke();
    if (s.markers) for (const [x, y] of s.points) { ctx.beginPath(); ctx.arc(X(x), Y(y, s.axis), 3, 0, 7); ctx.fill(); }
  }
  ctx.lineWidth = 1;
}

// The confusion matrix as coloured cells: rows are the true classes, columns the predictions;
// the colour is the share of the row, the number the count.
export function drawConfusionMatrix(canvas, confusion, classes) {
  const { ctx, width, height } = hiDpi(canvas);
  const n = classes.length;
  const left = 110, top = 70, size = Math.min((width - left - 10) / n, (height - top - 10) / n);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px system-ui, sans-serif';
  ctx.fillStyle = '#1d2330';
  ctx.textAlign = 'center';
  ctx.fillText('predicted', left + (n * size) / 2, 14);
  for (let j = 0; j < n; ++j) {
    ctx.save();
    ctx.translate(left + (j + 0.5) * size, top - 8);
    ctx.rotate(-Math.PI / 8);
    ctx.textAlign = 'left';
    ctx.fillText(readableClass(classes[j]), -20, 0);
    ctx.restore();
  }
  for (let i = 0; i < n; ++i) {
    const rowTotal = confusion[i].reduce((a, b) => a + b, 0);
    ctx.textAlign = 'right'; ctx.fillStyle = '#1d2330';
    ctx.fillText(readableClass(classes[i]), left - 8, top + (i + 0.5) * size + 4);
    for (let j = 0; j < n; ++j) {
      const share = rowTotal ? confusion[i][j] / rowTotal : 0;
      const hue = i === j ? 145 : 5;
      ctx.fillStyle = `hsl(${hue} 55% ${96 - 50 * share}%)`;
      ctx.fillRect(left + j * size, top + i * size, size - 2, size - 2);
      ctx.fillStyle = share > 0.55 ? '#fff' : '#1d2330';
      ctx.textAlign = 'center';
      ctx.fillText(String(confusion[i][j]), left + (j + 0.5) * size, top + (i + 0.5) * size + 4);
    }
  }
  ctx.save();
  ctx.translate(14, top + (n * size) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center'; ctx.fillStyle = '#1d2330';
  ctx.fillText('true class', 0, 0);
  ctx.restore();
}
