#include "server/http_reply.h"

namespace pagoda {

namespace asio = boost::asio;
namespace beast = boost::beast;

HttpReply error_reply(const ApiError& e) {
  HttpReply r;
  r.status = static_cast<http::status>(e.status);
  r.body = error_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.retry_after_s = e.retry_after_s;
  return r;
}

asio::awaitable<bool> write_reply(beast::tcp_stream& stream, const ReplyFraming& framing, const HttpReply& reply) {
  // HEAD gets the headers GET would get, Content-Length included, and no body.
  http::response<http::string_body> res{reply.status, framing.version};
  res.set(http::field::server, kServerHeader);
  res.set(http::field::content_type, reply.content_type);
  if (reply.retry_after_s > 0) res.set(http::field::retry_after, std::to_string(reply.retry_after_s));
  if (!reply.allow.empty()) res.set(http::field::allow, reply.allow);
  if (!reply.replica.empty()) res.set(kReplicaHeader, reply.replica);
  res.keep_alive(framing.keep_alive);
  res.content_length(reply.body.size());
  if (!framing.head) res.body() = reply.body;
  beast::error_code ec;
  if (framing.timeout.count() > 0) stream.expires_after(framing.timeout);
  if (framing.head) {
    http::response_serializer<http::string_body> sr{res};
    co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
  } else {
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  }
  if (framing.timeout.count() > 0) stream.expires_never();
  co_return !ec;
}

}  // namespace pagoda
