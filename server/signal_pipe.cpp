#include "server/signal_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

namespace pagoda {

namespace {

// The write end of the open SignalPipe, for the handler (-1: none).
std::atomic<int> g_write_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler reads it");

extern "C" void write_signal_number(int sig) {
  const int saved_errno = errno;
  const int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const auto byte = static_cast<unsigned char>(sig);
    // A full pipe drops the byte: the loop already has signals to read.
    [[maybe_unused]] const ssize_t n = ::write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

SignalPipe::~SignalPipe() { release(false); }

Status SignalPipe::open(std::initializer_list<int> signals) {
  if (read_fd_ >= 0) return Status::internal("SignalPipe::open called twice");
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
    return Status::unavailable(std::string("cannot create the signal pipe: ") + std::strerror(errno));
  int expected = -1;
  if (!g_write_fd.compare_exchange_strong(expected, fds[1])) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Status::internal("another SignalPipe is open in this process");
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  for (int sig : signals) {
    struct sigaction action {};
    action.sa_handler = write_signal_number;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    Saved saved{sig, {}};
    if (::sigaction(sig, &action, &saved.action) != 0) {
      const std::string why = std::strerror(errno);
      release(false);
      return Status::unavailable("cannot install the handler of signal " + std::to_string(sig) + ": " + why);
    }
    saved_.push_back(saved);
  }
  return Status::ok();
}

void SignalPipe::release(bool keep_ignored) {
  for (const Saved& s : saved_) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ::sigaction(s.sig, keep_ignored ? &ignore : &s.action, nullptr);
  }
  saved_.clear();
  if (read_fd_ < 0) return;
  g_write_fd.store(-1);
  // A handler already running on another thread may still write to the
  // descriptor it loaded: point it at /dev/null rather than close it, so
  // its number is never reused by a file or socket that byte would land in.
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, write_fd_);
    ::close(null_fd);
  } else {
    ::close(write_fd_);
  }
  ::close(read_fd_);
  read_fd_ = write_fd_ = -1;
}

}  // namespace pagoda
