#include "core/runtime.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <pthreadpool.h>

namespace nl {

namespace {

const char* status_name(xnn_status status) {
  switch (status) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized (xnn_initialize was not called or failed)";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state (operator not reshaped/set up)";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
    case xnn_status_reallocation_required: return "reallocation required";
    case xnn_status_deprecated: return "deprecated";
  }
  return "unknown status";
}

size_t resolve_threads(size_t requested) {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  (void)requested;
  return 1;  // no threads exist in a single-threaded wasm build
#else
  if (requested != 0) return requested;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
#endif
}

}  // namespace

void check_xnn(xnn_status status, const char* what) {
  if (status == xnn_status_success) return;
  throw std::runtime_error(std::string("XNNPACK ") + what + ": " + status_name(status) + " (status " +
                           std::to_string(static_cast<int>(status)) + ")");
}

Runtime::Runtime(size_t threads) {
  // xnn_initialize is idempotent (initialises once per process), so every Runtime may call it;
  // xnn_deinitialize is a no-op in this version and is therefore not paired with it.
  check_xnn(xnn_initialize(nullptr), "initialize");
  threads_ = resolve_threads(threads);
}

pthreadpool_t Runtime::threadpool() const {
  if (threads_ > 1 && threadpool_ == nullptr) {
    threadpool_ = pthreadpool_create(threads_);
    if (threadpool_ == nullptr)
      throw std::runtime_error("pthreadpool_create(" + std::to_string(threads_) +
                               ") failed: could not start the worker threads");
  }
  return threadpool_;
}

namespace {

struct ParallelJob {
  const std::function<void(size_t)>* task;
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mutex;
};

void run_parallel_task(void* context, size_t i) {
  auto* job = static_cast<ParallelJob*>(context);
  if (job->failed.load(std::memory_order_relaxed)) return;
  try {
    (*job->task)(i);
  } catch (...) {
    std::lock_guard<std::mutex> lock(job->mutex);
    if (!job->error) job->error = std::current_exception();
    job->failed = true;
  }
}

}  // namespace

void parallel_for(Runtime& rt, size_t n, const std::function<void(size_t)>& task) {
  if (n == 0) return;
  ParallelJob job;
  job.task = &task;
  pthreadpool_parallelize_1d(rt.threadpool(), run_parallel_task, &job, n, 0);
  if (job.error) std::rethrow_exception(job.error);
}

void parallel_ranges(Runtime& rt, size_t count, const std::function<void(size_t, size_t)>& range) {
  const size_t chunks = (count + kElementChunk - 1) / kElementChunk;
  if (chunks <= 1 || rt.threads() <= 1) {
    if (count > 0) range(0, count);
    return;
  }
  parallel_for(rt, chunks, [&](size_t t) { range(t * kElementChunk, std::min(count, (t + 1) * kElementChunk)); });
}

Runtime::~Runtime() {
  if (threadpool_) pthreadpool_destroy(threadpool_);
}

}  // namespace nl
