// CSV (RFC 4180): fields with commas, quotes or line breaks are quoted, quotes doubled.

export function csvField(value) {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(header, rows) {
  return [header, ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

// The model's confidence about one classification, as CSV columns: uncertain and
// out_of_distribution are true/false, outlier_score is empty when the model has no outlier
// detector; all three are empty without a result (a failed image, a slice not classified).
export const CONFIDENCE_COLUMNS = ['uncertain', 'out_of_distribution', 'outlier_score'];

export function confidenceFields(result) {
  if (!result) return ['', '', ''];
  const score = typeof result.outlierScore === 'number' ? +result.outlierScore.toPrecision(6) : '';
  return [Boolean(result.uncertain), Boolean(result.outOfDistribution), score];
}
