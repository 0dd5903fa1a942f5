// parallel_for: every index once, on one thread or several, and a task's exception reaches
// the caller (with its type) instead of ending the program on a worker thread.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include <pthreadpool.h>

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

#if !defined(__EMSCRIPTEN__) || defined(__EMSCRIPTEN_PTHREADS__)
// The pool's threads start at the first threadpool() call (the browser's threaded build loads
// a model while its thread workers are still starting): until then the Runtime knows its
// thread count, and afterwards it keeps one pool of that many threads.
TEST_CASE("Runtime starts its thread pool on first use, with the threads it was given") {
  nl::Runtime rt(3);
  CHECK(rt.threads() == 3);
  const pthreadpool_t pool = rt.threadpool();
  REQUIRE(pool != nullptr);
  CHECK(pthreadpool_get_threads_count(pool) == 3);
  CHECK(rt.threadpool() == pool);
  std::vector<int> seen(100, 0);
  nl::parallel_for(rt, seen.size(), [&](size_t i) { seen[i]++; });
  CHECK(std::count(seen.begin(), seen.end(), 1) == 100);
}
#endif

TEST_CASE("a single-threaded Runtime has no pool") {
  nl::Runtime rt(1);
  CHECK(rt.threads() == 1);
  CHECK(rt.threadpool() == nullptr);
}
