#include "tools/soak/server_child.h"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/beast.hpp>

namespace pagoda::soak {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

int http_get(int port, const std::string& target, std::string* body, std::chrono::milliseconds timeout) {
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.keep_alive(false);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    if (body) *body = res.body();
    return static_cast<int>(res.result_int());
  } catch (...) {
    return 0;
  }
}

std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    try {
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    } catch (...) {
    }
  }
  return out;
}

bool ServerChild::start(const std::string& binary, int port, const std::vector<std::string>& extra,
                        std::string* error) {
  port_ = port;
  // Something already answering on the port (say, a server left over from a
  // killed run) would be measured instead of our child.
  if (http_get(port, "/health", nullptr, std::chrono::milliseconds(500)) != 0) {
    *error = "port " + std::to_string(port) + " is already in use by another server";
    return false;
  }
  std::vector<std::string> args = {binary, "serve", "--port", std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  auto child = ChildProcess::spawn(args, "/tmp/pagoda-soak-server-" + std::to_string(port) + ".log");
  if (!child.is_ok()) {
    *error = child.status().message();
    return false;
  }
  child_ = std::move(child).value();
  for (int i = 0; i < 600; ++i) {
    if (!running()) {
      *error = "pagoda serve exited during start-up (log: " + child_.log_path() + ")";
      return false;
    }
    if (http_get(port, "/health", nullptr, std::chrono::milliseconds(1000)) == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  *error = "pagoda serve did not become healthy within 30 s";
  return false;
}

bool ServerChild::running() { return child_.running(); }

int64_t ServerChild::rss_kib() const {
  std::ifstream in("/proc/" + std::to_string(child_.pid()) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

std::map<std::string, double> ServerChild::metrics() const {
  std::string body;
  if (http_get(port_, "/metrics", &body, std::chrono::milliseconds(5000)) != 200) return {};
  return parse_metrics(body);
}

void ServerChild::terminate() { child_.signal(SIGTERM); }

int ServerChild::wait_exit(std::chrono::milliseconds timeout) { return child_.wait_exit(timeout); }

}  // namespace pagoda::soak
