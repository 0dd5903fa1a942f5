// Classification metrics from (label, prediction) pairs over known classes.

// confusion[t][p] = number of images of true class t predicted as p.
export function confusionMatrix(pairs, classes) {
  const index = new Map(classes.map((c, i) => [c, i]));
  const m = classes.map(() => classes.map(() => 0));
  for (const { label, prediction } of pairs) m[index.get(label)][index.get(prediction)] += 1;
  return m;
}

// {accuracy, total, perClass: [{name, precision, recall, f1, support}], macroF1}
// A precision/recall with a zero denominator is reported as null (undefined), not 0.
export function classificationReport(confusion, classes) {
  const n = classes.length;
  let total = 0, correct = 0;
  const perClass = classes.map((name, k) => {
    let predicted = 0, actual = 0;
    for (let i = 0; i < n; ++i) { predicted += confusion[i][k]; actual += confusion[k][i]; }
    const tp = confusion[k][k];
    const precision = predicted ? tp / predicted : null;
    const recall = actual ? tp / actual : null;
    const f1 = precision !== null && recall !== null && precision + recall > 0
      ? (2 * precision * recall) / (precision + recall) : (precision === null || recall === null ? null : 0);
    return { name, precision, recall, f1, support: actual };
  });
  for (let i = 0; i < n; ++i) for (let j = 0; j < n; ++j) {
    total += confusion[i][j];
    if (i === j) correct += confusion[i][j];
  }
  const f1s = perClass.filter((c) => c.support > 0 && c.f1 !== null).map((c) => c.f1);
  return {
    accuracy: total ? correct / total : null,
    total,
    perClass,
    macroF1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null,
  };
}
