// Splits a Server-Sent Events byte stream into the payloads of its `data:`
// fields, one per event, however the bytes were split into reads.
// Handles "\n" and "\r\n" line ends and multi-line data (joined with "\n").
// Owns its partial-line buffer; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagoda::bench {

class SseParser {
 public:
  // Appends `bytes` and returns the data payloads of the events they complete.
  std::vector<std::string> feed(std::string_view bytes);
  // Bytes held back waiting for the end of a line or event.
  size_t pending() const { return line_.size() + data_.size(); }

 private:
  std::string line_;  // current incomplete line
  std::string data_;  // data of the current event so far
  bool has_data_ = false;
};

}  // namespace pagoda::bench
