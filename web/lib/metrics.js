// Classification metrics from (label, prediction) pairs over known classes.

// confusion[t][p] = number of images of true class t predicted as p.
export function confusionMatrix(pairs, classes) {
  const index = new Map(classes.map((c, i) => [c, i]));
  const m = classes.map(() => classes.map(() => 0));
  for (const { label, prediction } of pairs) m[index.get(label)][index.get(prediction)] += 1;
  return m;
}

// The Wilson score interval (two-sided, z = 1.96: ~95%) of a proportion: where the true
// accuracy plausibly lies, given how few images measured it. Unlike p ± z·sqrt(p(1-p)/n) it
// stays inside [0, 1] and does not collapse to a point at 0% or 100% (e.g. 10/10 gives
// [0.72, 1]). The same formula as wilson_interval in src/train/metrics.cpp.
export function wilsonInterval(successes, trials, z = 1.959963984540054) {
  if (!trials) return { low: 0, high: 1 };
  const p = successes / trials, z2 = z * z, d = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / d;
  return {
    low: successes === 0 ? 0 : Math.max(centre - half, 0),
    high: successes === trials ? 1 : Math.min(centre + half, 1),
  };
}

// {accuracy, accuracyInterval: {low, high}, total, perClass: [{name, precision, recall, f1,
// support}], macroF1}
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
    accuracyInterval: wilsonInterval(correct, total),
    total,
    perClass,
    macroF1: f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null,
  };
}
