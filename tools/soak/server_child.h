// ServerChild: a `pagoda serve` child process on a loopback port, for the
// soak and overload tests: spawns it, waits for /health, reads its resident
// memory (VmRSS from /proc/PID/status) and its /metrics, sends SIGTERM and
// collects the exit status.
//
// Owns the child process (a ChildProcess: killed with SIGKILL if still
// running at destruction or when the soak program dies). Not thread-safe; used from the soak program's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/child_process.h"

namespace pagoda::soak {

// Blocking HTTP GET on 127.0.0.1:port; returns the status (0 on failure) and body.
int http_get(int port, const std::string& target, std::string* body, std::chrono::milliseconds timeout);

// Every unlabelled sample of a Prometheus text page ("name value" lines);
// labelled samples are kept whole as `name{labels}`.
std::map<std::string, double> parse_metrics(const std::string& text);

class ServerChild {
 public:
  ServerChild() = default;
  ServerChild(const ServerChild&) = delete;
  ServerChild& operator=(const ServerChild&) = delete;

  // Starts `binary serve --port port args...` and waits up to 30 s for /health.
  bool start(const std::string& binary, int port, const std::vector<std::string>& args, std::string* error);
  pid_t pid() const { return child_.pid(); }
  int port() const { return port_; }
  bool running();
  // VmRSS in KiB, or -1.
  int64_t rss_kib() const;
  // /metrics as parsed samples (empty on failure).
  std::map<std::string, double> metrics() const;
  // Sends SIGTERM.
  void terminate();
  // Waits for the exit; returns the exit status, -1 if killed by a signal,
  // -2 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);

 private:
  ChildProcess child_;  // output to /tmp/pagoda-soak-server-PORT.log
  int port_ = 0;
};

}  // namespace pagoda::soak
