// parallel_for: every index once, on one thread or several, and a task's exception reaches
// the caller (with its type) instead of ending the program on a worker thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/runtime.h"

namespace {

struct TaskError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("parallel_for runs every index once and rethrows a task's exception") {
  for (size_t threads : {1, 2}) {
    CAPTURE(threads);
    nl::Runtime rt(threads);
    std::vector<int> hits(1000, 0);
    nl::parallel_for(rt, hits.size(), [&](size_t i) { ++hits[i]; });
    CHECK(std::count(hits.begin(), hits.end(), 1) == 1000);
    CHECK_NOTHROW(nl::parallel_for(rt, 0, [](size_t) { throw TaskError("never called"); }));

    std::atomic<size_t> ran{0};
    CHECK_THROWS_WITH_AS(nl::parallel_for(rt, 1000,
                                          [&](size_t i) {
                                            ++ran;
                                            if (i % 100 == 37) throw TaskError("task " + std::to_string(i));
                                          }),
                         doctest::Contains("task "), TaskError);
    CHECK(ran.load() <= 1000);
    // The pool is still usable afterwards.
    nl::parallel_for(rt, hits.size(), [&](size_t i) { ++hits[i]; });
    CHECK(std::count(hits.begin(), hits.end(), 2) == 1000);
  }
}
