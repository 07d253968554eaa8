// ChildProcess: a program started as a child of this process, for tests,
// benchmarks and the soak tool that run `pagoda serve`. The child's stdout and
// stderr go to a log file (never to the parent's pipes, which ctest reads to
// the end), and the child is killed by the kernel if the parent dies
// (PR_SET_PDEATHSIG), so a failed test cannot leave a server running.
//
// Owns the child: the destructor kills it (SIGKILL) and reaps it if it still
// runs. Movable, not copyable; not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace pagoda {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs argv[0] (a path) with argv; output goes to `log_path` (truncated),
  // or to /dev/null when it is empty.
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv, const std::string& log_path);

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // True while the child has not exited (reaps it when it has).
  bool running();
  // Sends `sig` if the child runs.
  void signal(int sig);
  // Waits for the exit: its exit status, -1 if killed by a signal, -2 if it
  // still runs after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout);
  // SIGKILL and reap (no-op once exited).
  void kill();

 private:
  pid_t pid_ = -1;
  int exit_status_ = -2;  // once reaped
  std::string log_path_;
};

}  // namespace pagoda
