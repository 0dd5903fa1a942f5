// Runtime: XNNPACK initialisation and the thread pool every operator runs on.
// One Runtime is created by the program (CLI, wasm module, test) and passed by
// reference to every forward/backward call; there is no global handle table.
#pragma once
#include <cstddef>
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

  pthreadpool_t threadpool() const { return threadpool_; }  // nullptr when single-threaded
  size_t threads() const { return threads_; }

 private:
  pthreadpool_t threadpool_ = nullptr;
  size_t threads_ = 1;
};

// Throws std::runtime_error("XNNPACK <what>: <status name>") unless status is success.
void check_xnn(xnn_status status, const char* what);

// Owning handle for an XNNPACK operator.
struct XnnDeleter {
  void operator()(xnn_operator_t op) const { if (op) xnn_delete_operator(op); }
};
using XnnOp = std::unique_ptr<xnn_operator, XnnDeleter>;

}  // namespace nl
