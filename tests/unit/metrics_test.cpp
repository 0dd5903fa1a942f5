// Evaluation figures: per-class precision / recall / F1 from a confusion matrix worked by
// hand, and the Wilson interval against published values (Newcombe 1998, Stat. Med. 17:857,
// table II, method 3) and its defining properties.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "train/metrics.h"

using namespace nl;

TEST_CASE("per_class_figures: a 3-class confusion matrix worked by hand") {
  // rows = true class; class 2 is never predicted, so its precision has no denominator.
  const std::vector<std::vector<size_t>> confusion = {{5, 1, 0}, {2, 6, 0}, {1, 1, 0}};
  const std::vector<ClassFigures> f = per_class_figures(confusion);
  REQUIRE(f.size() == 3);
  CHECK(f[0].precision == doctest::Approx(5.0 / 8.0));
  CHECK(f[0].recall == doctest::Approx(5.0 / 6.0));
  CHECK(f[0].f1 == doctest::Approx(2.0 * (5.0 / 8.0) * (5.0 / 6.0) / (5.0 / 8.0 + 5.0 / 6.0)));
  CHECK(f[0].support == 6);
  CHECK(f[1].precision == doctest::Approx(6.0 / 8.0));
  CHECK(f[1].recall == doctest::Approx(6.0 / 8.0));
  CHECK(f[1].support == 8);
  CHECK(f[2].precision == 0.0);
  CHECK(f[2].recall == 0.0);
  CHECK(f[2].f1 == 0.0);
  CHECK(f[2].support == 2);
  CHECK_THROWS_WITH_AS(per_class_figures({{1, 2}, {3}}),
                       "per_class_figures: confusion row 1 has 1 columns, expected 2 (one per class)",
                       std::invalid_argument);
}

TEST_CASE("wilson_interval: published 95% intervals") {
  struct Case {
    size_t successes, trials;
    double low, high;
  };
  for (const Case& c : {Case{81, 263, 0.2553, 0.3662}, Case{15, 148, 0.0624, 0.1605},
                        Case{0, 20, 0.0, 0.1611}, Case{1, 29, 0.0061, 0.1718}}) {
    CAPTURE(c.successes);
    CAPTURE(c.trials);
    const Interval i = wilson_interval(c.successes, c.trials);
    // The table gives four decimals.
    CHECK(std::abs(i.low - c.low) <= 5e-5);
    CHECK(std::abs(i.high - c.high) <= 5e-5);
  }
}

TEST_CASE("wilson_interval: contains the estimate, mirrors, narrows with more trials") {
  for (size_t n : {1u, 7u, 50u, 1141u})
    for (size_t k = 0; k <= n; k += (n > 50 ? 97 : 1)) {
      CAPTURE(n);
      CAPTURE(k);
      const Interval i = wilson_interval(k, n), mirror = wilson_interval(n - k, n);
      const double p = static_cast<double>(k) / static_cast<double>(n);
      CHECK(i.low >= 0.0);
      CHECK(i.high <= 1.0);
      CHECK(i.low <= p);
      CHECK(i.high >= p);
      CHECK(i.low == doctest::Approx(1.0 - mirror.high));
      if (k == 0) CHECK(i.low == 0.0);
      if (k == n) CHECK(i.high == 1.0);
      CHECK(i.high - i.low > 0.0);  // never certain, even at 0% or 100%
    }
  const Interval small = wilson_interval(9, 10), large = wilson_interval(900, 1000);
  CHECK(large.high - large.low < small.high - small.low);
  const Interval wide = wilson_interval(9, 10, 2.576);  // 99%
  CHECK(wide.low < small.low);
  CHECK(wide.high > small.high);
  const Interval none = wilson_interval(0, 0);
  CHECK(none.low == 0.0);
  CHECK(none.high == 1.0);
}

TEST_CASE("wilson_interval: bad counts and z are refused by name") {
  CHECK_THROWS_WITH_AS(wilson_interval(5, 4),
                       "wilson_interval: 5 successes out of 4 trials (successes must not exceed trials)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(wilson_interval(1, 4, 0.0), "wilson_interval: z must be positive", std::invalid_argument);
}
