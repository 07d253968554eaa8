// SignalPipe: delivers SIGINT, SIGTERM and SIGHUP to the I/O loop through a
// pipe (the self-pipe trick): its own handler writes the signal's number, one
// byte, to the pipe, and the HttpServer reads the other end.
//
// Why not asio::signal_set: destroying one puts back the default action, so a
// SIGTERM repeated while a drained server tears down (an impatient supervisor
// sends one) could kill the process in the gap before anything ignores it
// again. release(true) replaces the handler by SIG_IGN in one sigaction, so
// there is no such gap.
//
// Owns the pipe and the handlers it installed. At most one is open per
// process (the handler finds the pipe through a process-wide descriptor).
// open(), release() and the destructor from one thread; the handler is
// async-signal-safe.
#pragma once

#include <csignal>
#include <initializer_list>
#include <vector>

#include "common/status.h"

namespace pagoda {

class SignalPipe {
 public:
  SignalPipe() = default;
  ~SignalPipe();  // release(false) if still open
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  // Creates the pipe and installs the handler for each of `signals`.
  Status open(std::initializer_list<int> signals);
  // A non-blocking descriptor that yields one byte per signal received
  // (owned here: duplicate it to hand it to an asio descriptor).
  int read_fd() const { return read_fd_; }
  // Uninstalls the handlers and closes the pipe: each signal gets SIG_IGN
  // when `keep_ignored` (the process is shutting down), else the action it
  // had before open(). The write end's descriptor stays open on /dev/null
  // (one per open(), for a handler still running elsewhere).
  void release(bool keep_ignored);

 private:
  struct Saved {
    int sig;
    struct sigaction action;  // what open() replaced
  };
  std::vector<Saved> saved_;
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace pagoda
