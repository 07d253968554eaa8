#include "server/request_reader.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <iterator>
#include <string>

namespace pagoda {

namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

RequestReader::RequestReader(const ServerConfig& config) : config_(config) {
  parser_.body_limit(static_cast<uint64_t>(config.server.max_body_bytes));
  parser_.header_limit(kMaxHeaderBytes);
}

void RequestReader::refuse(int status, std::string message, std::string code) {
  refusal_ = api_error(status, std::move(message), std::move(code));
  state_ = State::kRefused;
}

size_t RequestReader::feed(std::string_view bytes) {
  size_t used = 0;
  try {
    while ((state_ == State::kReadingHeader || state_ == State::kReadingBody) && used < bytes.size()) {
      boost::beast::error_code ec;
      const size_t n = parser_.put(boost::asio::const_buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (state_ == State::kReadingHeader) header_bytes_ += n;
      if (ec == http::error::need_more) break;
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        refuse(431, "request header fields are too large (16 KiB at most)", "headers_too_large");
      } else if (ec == http::error::body_limit) {
        refuse(
            413,
            "request body exceeds server.max_body_bytes (" + std::to_string(config_.server.max_body_bytes) + " bytes)",
            "body_too_large");
      } else if (ec) {
        refuse(400, "malformed HTTP request (" + ec.message() + ")", "bad_request");
      }
      if (state_ == State::kRefused) break;
      if (state_ == State::kReadingHeader && parser_.is_header_done()) {
        on_header();
        if (state_ == State::kRefused) break;
        parser_.eager(true);  // from here on, one put() takes all the body bytes it is given
        state_ = State::kReadingBody;
      }
      if (parser_.is_done()) {
        on_done();
        break;
      }
      if (n == 0) break;
    }
  } catch (const std::exception& e) {
    // Beast throws (std::length_error, std::bad_alloc) on inputs it cannot
    // hold; whatever it is, the request ends in a 400, never past here.
    refuse(400, std::string("malformed HTTP request (") + e.what() + ")", "bad_request");
  }
  return used;
}

void RequestReader::on_header() {
  const HttpRequest& req = parser_.get();
  header_fields_ = static_cast<size_t>(std::distance(req.begin(), req.end()));
  if (static_cast<int64_t>(header_fields_) > config_.server.max_header_fields)
    return refuse(
        431,
        "too many header fields (server.max_header_fields = " + std::to_string(config_.server.max_header_fields) + ")",
        "too_many_headers");
  const auto te = req.equal_range(http::field::transfer_encoding);
  if (te.first != te.second) {
    if (req.version() < 11)
      return refuse(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request", "bad_request");
    if (req.count(http::field::content_length) > 0)
      return refuse(400, "a request may not carry both Transfer-Encoding and Content-Length", "bad_request");
    // Every coding, over every Transfer-Encoding field: exactly one, chunked.
    std::vector<std::string> codings;
    for (auto it = te.first; it != te.second; ++it) {
      std::string_view list(it->value().data(), it->value().size());
      while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view item = trim(list.substr(0, comma));
        if (!item.empty()) codings.emplace_back(item);
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    }
    if (codings.empty() || !iequals(codings.back(), "chunked"))
      return refuse(400, "the last transfer coding must be chunked", "bad_request");
    if (codings.size() > 1)
      return refuse(501, "transfer coding '" + codings.front() + "' is not supported (only chunked)",
                    "unsupported_transfer_coding");
  }
  const auto expect = req.find(http::field::expect);
  if (expect != req.end() && req.version() >= 11) {
    // HTTP/1.0 clients never wait for a 100, so their Expect is ignored.
    if (!iequals(trim(std::string_view(expect->value().data(), expect->value().size())), "100-continue"))
      return refuse(417, "the only expectation supported is 100-continue", "expectation_failed");
    expects_continue_ = true;
  }
}

size_t RequestReader::field_bytes_from(size_t first_field) const {
  size_t i = 0, bytes = 0;
  for (const auto& f : parser_.get()) {
    if (i++ >= first_field) bytes += f.name_string().size() + f.value().size() + 4;  // "name: value\r\n"
  }
  return bytes;
}

void RequestReader::on_done() {
  // Trailer fields land among the header fields: they share its limits.
  const HttpRequest& req = parser_.get();
  const auto fields = static_cast<size_t>(std::distance(req.begin(), req.end()));
  if (static_cast<int64_t>(fields) > config_.server.max_header_fields)
    return refuse(431,
                  "too many header and trailer fields (server.max_header_fields = " +
                      std::to_string(config_.server.max_header_fields) + ")",
                  "too_many_headers");
  if (fields > header_fields_ && header_bytes_ + field_bytes_from(header_fields_) > kMaxHeaderBytes)
    return refuse(431, "request header and trailer fields are too large (16 KiB at most)", "headers_too_large");
  // Then the trailer fields are dropped (RFC 9110 6.5.1 lets a recipient
  // discard them): a field sent only as a trailer, an Authorization say,
  // must not count as if it had come with the header.
  HttpRequest& mut = parser_.get();
  size_t i = 0;
  for (auto it = mut.begin(); it != mut.end();) it = i++ < header_fields_ ? std::next(it) : mut.erase(it);
  state_ = State::kDone;
}

size_t RequestReader::max_pending() const {
  if (state_ == State::kReadingHeader) return kMaxHeaderBytes;
  const size_t left = header_bytes_ < kMaxHeaderBytes ? kMaxHeaderBytes - header_bytes_ : 0;
  return left + kMaxChunkLineBytes;
}

RequestReader::State RequestReader::check_pending(size_t pending) {
  if ((state_ == State::kReadingHeader || state_ == State::kReadingBody) && pending > max_pending())
    refuse(431, "request header or trailer fields are too large (16 KiB at most)", "headers_too_large");
  return state_;
}

}  // namespace pagoda
