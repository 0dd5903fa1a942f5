// Runtime: XNNPACK initialisation and the thread pool every operator runs on.
// One Runtime is created by the program (CLI, wasm module, test) and passed by
// reference to every forward/backward call; there is no global handle table.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include <xnnpack.h>

typedef struct pthreadpool* pthreadpool_t;

namespace nl {

class Runtime {
 public:
  // threads == 0: one per core natively; always 1 in a single-threaded wasm build.
  explicit Runtime(size_t threads = 1);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // nullptr when single-threaded. The pool's threads start on the first call, not with the
  // Runtime: the browser's threaded build starts its thread workers asynchronously, and the
  // page loads a model (which runs nothing in parallel) while they start. Call it from the
  // thread that owns the Runtime (every operator and parallel_for does).
  pthreadpool_t threadpool() const;
  size_t threads() const { return threads_; }

 private:
  mutable pthreadpool_t threadpool_ = nullptr;
  size_t threads_ = 1;
};

// Calls task(i) for every i in [0, n) on the runtime's threads (inline when single-threaded).
// Tasks must write disjoint memory; each index is computed exactly as it would be serially,
// so the result does not depend on the thread count. An exception in a task is rethrown
// here once all tasks have finished.
void parallel_for(Runtime& rt, size_t n, const std::function<void(size_t)>& task);

// Calls range(begin, end) over [0, count) in fixed chunks of kElementChunk elements, in
// parallel: for element-wise loops (each element's result is the same on any thread count).
// Inline, in one call, when single-threaded or when there is one chunk.
inline constexpr size_t kElementChunk = 16384;
void parallel_ranges(Runtime& rt, size_t count, const std::function<void(size_t, size_t)>& range);

// Throws std::runtime_error("XNNPACK <what>: <status name>") unless status is success.
void check_xnn(xnn_status status, const char* what);

// Owning handle for an XNNPACK operator.
struct XnnDeleter {
  void operator()(xnn_operator_t op) const { if (op) xnn_delete_operator(op); }
};
using XnnOp = std::unique_ptr<xnn_operator, XnnDeleter>;

}  // namespace nl
