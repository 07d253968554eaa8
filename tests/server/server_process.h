// Test helpers: run the real `pagoda serve` binary as a child process on a
// loopback port, and talk HTTP to it (whole responses, SSE streams, raw bytes).
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/child_process.h"

namespace pagoda::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpResult {
  int status = 0;
  std::string body;
  std::string retry_after;
  std::string content_type;
  std::string replica;  // X-Pagoda-Replica
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One request on a fresh connection.
inline HttpResult http_request(int port, http::verb method, const std::string& target, const std::string& body = "",
                               std::vector<std::pair<std::string, std::string>> headers = {}) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  for (auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  beast::error_code ec;
  http::read(stream, buf, parser, ec);
  HttpResult r;
  if (ec) return r;
  const auto& res = parser.get();
  r.status = static_cast<int>(res.result_int());
  r.body = res.body();
  if (res.count(http::field::retry_after)) r.retry_after = std::string(res[http::field::retry_after]);
  if (res.count(http::field::content_type)) r.content_type = std::string(res[http::field::content_type]);
  if (res.count("X-Pagoda-Replica")) r.replica = std::string(res["X-Pagoda-Replica"]);
  return r;
}

inline HttpResult post(int port, const std::string& target, const std::string& body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  return http_request(port, http::verb::post, target, body, std::move(headers));
}

// The JSON payloads of an SSE response body ("data: {...}" events), without [DONE].
inline std::vector<nlohmann::json> sse_events(const std::string& body, bool* saw_done = nullptr) {
  std::vector<nlohmann::json> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    const std::string payload = body.substr(pos + 6, end - pos - 6);
    if (payload == "[DONE]") {
      if (saw_done) *saw_done = true;
    } else {
      out.push_back(nlohmann::json::parse(payload, nullptr, false));
    }
    pos = end;
  }
  return out;
}

// Sends raw bytes and returns whatever comes back until the server closes
// (or `timeout`).
inline std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  asio::write(s, asio::buffer(bytes));
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  s.non_blocking(true);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    beast::error_code ec;
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

// `pagoda serve` as a child process (common/ChildProcess: output to a log
// file, dies with the test process).
class ServerProcess {
 public:
  // `launcher` (e.g. {"/usr/bin/prlimit", "--nofile=128:128", "--"}) runs
  // the server binary under another program.
  explicit ServerProcess(int port, std::vector<std::string> extra_args = {}, std::vector<std::string> launcher = {})
      : port_(port) {
    const char* bin = std::getenv("PAGODA_BIN");
    REQUIRE(bin != nullptr);
    std::vector<std::string> args = launcher;
    for (const std::string& a : {std::string(bin), std::string("serve"), std::string("--port"), std::to_string(port),
                                 std::string("--set"), std::string("logging.level=warn")})
      args.push_back(a);
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto child = ChildProcess::spawn(args, "/tmp/pagoda-test-server-" + std::to_string(port) + ".log");
    REQUIRE(child.is_ok());
    child_ = std::move(child).value();
    // Start-up takes well under a second on a quiet machine; allow for a
    // heavily loaded one.
    for (int i = 0; i < 1200 && child_.running(); ++i) {
      if (http_request_safe("/health") == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    child_.kill();
    FAIL("pagoda serve did not become healthy on port " << port << "; its log: " << child_.log_path());
  }
  int port() const { return port_; }
  // Sends SIGTERM and waits; returns the exit status (-1 if killed by a signal).
  int terminate(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    child_.signal(SIGTERM);
    return wait_exit(timeout);
  }
  int wait_exit(std::chrono::milliseconds timeout) { return child_.wait_exit(timeout); }
  void signal(int sig) { child_.signal(sig); }
  pid_t pid() const { return child_.pid(); }
  bool running() { return child_.running(); }
  // Everything the server has logged so far.
  std::string log() const {
    std::ifstream in(child_.log_path());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // CPU seconds (user + system) the server has used (Linux: /proc/<pid>/stat).
  double cpu_seconds() const {
    std::ifstream in("/proc/" + std::to_string(child_.pid()) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  int http_request_safe(const std::string& target) {
    try {
      return http_request(port_, http::verb::get, target).status;
    } catch (...) {
      return 0;
    }
  }
  // Threads of the server process now (Linux: /proc/<pid>/task).
  int thread_count() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(child_.pid()) + "/task"))
      ++n;
    return n;
  }
  // A gauge or counter value from /metrics (first sample of `name`).
  double metric(const std::string& name) {
    const std::string body = http_request(port_, http::verb::get, "/metrics").body;
    const size_t at = body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(body.substr(at + name.size() + 2));
  }
  // The sum of every sample of `name` from /metrics, over all label sets.
  double metric_sum(const std::string& name) {
    const std::string body = http_request(port_, http::verb::get, "/metrics").body;
    double sum = 0;
    for (size_t at = body.find("\n" + name); at != std::string::npos; at = body.find("\n" + name, at + 1)) {
      const size_t line_end = body.find('\n', at + 1);
      const std::string line = body.substr(at + 1, line_end - at - 1);
      const char after = line.size() > name.size() ? line[name.size()] : '\0';
      if (after != ' ' && after != '{') continue;  // a longer name that shares the prefix
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  }

 private:
  int port_;
  ChildProcess child_;
};

}  // namespace pagoda::testing
