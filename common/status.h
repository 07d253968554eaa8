// Status and Result<T>: how errors travel between pagoda's modules.
//
// A Status is either OK or carries a code and a human-readable message that
// names what was wrong (a config key, a request field, a file) and what is
// allowed; a rejection of a request field also names the field in field(),
// which the API reports as the error's "param". Modules return Status / Result<T> instead of throwing; exceptions
// from third-party libraries are caught at module borders and converted.
// Value types, cheap to move; not synchronized (like any value).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pagoda {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // bad input from a user: config, request, file
  kNotFound,           // a named thing does not exist
  kOutOfRange,         // a value or length beyond a limit
  kResourceExhausted,  // no memory / pages / queue slots left
  kUnavailable,        // try again later (draining, loading)
  kDataLoss,           // truncated or corrupt file
  kCancelled,          // the caller gave up
  kInternal,           // a bug or an unexpected library failure
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status out_of_range(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status data_loss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
  static Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // What the error is about, for the caller to act on, or "": the request
  // field of an API validation error ("temperature", "prompt"), or the
  // failure class of a bench run's error ("connection", "http_401").
  const std::string& field() const { return field_; }
  Status with_field(std::string field) && {
    field_ = std::move(field);
    return std::move(*this);
  }
  // "InvalidArgument: message", or "OK".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string field_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT(implicit)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(implicit)
    assert(!std::get<Status>(data_).is_ok() && "Result built from an OK status");
  }

  bool is_ok() const { return std::holds_alternative<T>(data_); }
  explicit operator bool() const { return is_ok(); }
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(data_); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace pagoda

// Return early from a function returning Status or Result<T> when `expr` fails.
#define PAGODA_RETURN_IF_ERROR(expr) \
  do {                               \
    ::pagoda::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;    \
  } while (0)
