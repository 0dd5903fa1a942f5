// Number formatting without Intl: the first toLocaleString call loads the browser's locale data,
// which took 65-80 ms of the page's start (measured in headless Chromium), before the model's
// status line could show.

// 1229732 -> "1,229,732"
export function groupDigits(n) {
  const [whole, fraction] = String(n).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}
