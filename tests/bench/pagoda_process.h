// Test helper: `$PAGODA_BIN serve` as a child process on a loopback port,
// with a blocking GET for /health and /metrics. Owns the child (a
// ChildProcess: output to a log file, killed on destruction or when the test
// dies). Not thread-safe.
#pragma once

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <catch2/catch.hpp>

#include "common/child_process.h"

namespace pagoda::bench_testing {

// Status and body of GET `target`; status 0 when nothing answered.
inline std::pair<int, std::string> http_get(int port, const std::string& target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream s(io);
    s.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                             static_cast<unsigned short>(port)));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    return {static_cast<int>(res.result_int()), res.body()};
  } catch (const std::exception&) {
    return {0, ""};
  }
}

class PagodaProcess {
 public:
  PagodaProcess(int port, std::vector<std::string> extra) : port_(port) {
    const char* bin = std::getenv("PAGODA_BIN");
    REQUIRE(bin != nullptr);
    std::vector<std::string> args = {bin, "serve", "--port", std::to_string(port), "--set", "logging.level=warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = ChildProcess::spawn(args, "/tmp/pagoda-bench-test-server-" + std::to_string(port) + ".log");
    REQUIRE(child.is_ok());
    child_ = std::move(child).value();
    for (int i = 0; i < 1200 && child_.running(); ++i) {
      if (http_get(port_, "/health").first == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    child_.kill();
    FAIL("pagoda serve did not become healthy on port " << port << "; its log: " << child_.log_path());
  }
  PagodaProcess(const PagodaProcess&) = delete;
  PagodaProcess& operator=(const PagodaProcess&) = delete;
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  ChildProcess child_;  // killed on destruction
};

}  // namespace pagoda::bench_testing
