// SignalPipe against the kernel: raised signals arrive as bytes, released
// handlers leave the signals ignored (or as they were), and a second pipe in
// the same process is refused.
#include "server/signal_pipe.h"

#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <vector>

#include <catch2/catch.hpp>

namespace pagoda {
namespace {

std::vector<int> read_signals(int fd) {
  std::vector<int> out;
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, 100) == 1) {
    unsigned char b = 0;
    if (::read(fd, &b, 1) != 1) break;
    out.push_back(b);
  }
  return out;
}

void (*current_handler(int sig))(int) {
  struct sigaction now {};
  ::sigaction(sig, nullptr, &now);
  return now.sa_handler;
}

}  // namespace

TEST_CASE("signal pipe: each raised signal arrives as one byte naming it") {
  SignalPipe pipe;
  REQUIRE(pipe.open({SIGTERM, SIGHUP}).is_ok());
  ::raise(SIGHUP);
  ::raise(SIGTERM);
  ::raise(SIGTERM);
  CHECK(read_signals(pipe.read_fd()) == std::vector<int>{SIGHUP, SIGTERM, SIGTERM});
  pipe.release(false);
  CHECK(pipe.read_fd() == -1);
}

TEST_CASE("signal pipe: released while shutting down the signals stay ignored") {
  {
    SignalPipe pipe;
    REQUIRE(pipe.open({SIGTERM, SIGINT}).is_ok());
    pipe.release(true);
  }
  CHECK(current_handler(SIGTERM) == SIG_IGN);
  CHECK(current_handler(SIGINT) == SIG_IGN);
  ::raise(SIGTERM);  // the test process survives it
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}

TEST_CASE("signal pipe: released otherwise the previous actions come back") {
  std::signal(SIGHUP, SIG_DFL);
  {
    SignalPipe pipe;
    REQUIRE(pipe.open({SIGHUP}).is_ok());
    CHECK(current_handler(SIGHUP) != SIG_DFL);
  }  // the destructor releases
  CHECK(current_handler(SIGHUP) == SIG_DFL);
}

TEST_CASE("signal pipe: one per process") {
  SignalPipe first;
  REQUIRE(first.open({SIGUSR1}).is_ok());
  SignalPipe second;
  const Status st = second.open({SIGUSR1});
  CHECK_FALSE(st.is_ok());
  CHECK(st.message().find("another SignalPipe") != std::string::npos);
  first.release(false);
  CHECK(second.open({SIGUSR1}).is_ok());
}

}  // namespace pagoda
