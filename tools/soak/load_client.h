// One client request of the soak and overload tests, as an Asio coroutine:
// connect, send, read the (plain or SSE) response and classify how it ended,
// optionally hanging up mid-stream or sending a malformed request. The
// client always knows which way its request ended (Outcome::Kind).
//
// Shot is a plain value; run_shot() runs on the caller's io_context and
// shares nothing, so any number run concurrently on one thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

namespace pagoda::soak {

struct Shot {
  enum class Kind { kNormal, kDisconnect, kMalformedJson, kMalformedHttp, kProbe };
  // kProbe: a client at the edges of the protocol (raw bytes in `body`).
  enum class Probe {
    kExtraByteThenLeave,  // a request, one more byte, then gone before the answer
    kHeadPipelined,       // HEAD then GET on one connection: the answers must not run together
    kHttp10Stream,        // an HTTP/1.0 stream: close-delimited, no chunk sizes
    kChunkedTrailer,      // a chunked body with a small trailer: served
    kOversizedTrailer,    // a trailer over the header budget: 431
  };
  Kind kind = Kind::kNormal;
  Probe probe = Probe::kExtraByteThenLeave;
  std::string target = "/v1/completions";
  std::string body;  // JSON (or junk for the malformed kinds)
  bool stream = true;
  int disconnect_after = 1;  // kDisconnect: hang up after this many SSE events
};

struct Outcome {
  enum class Kind {
    kCompleted,   // 200 and a finish_reason (stream: then [DONE])
    kCancelled,   // 200, then the server reported an error/abort event
    kRejected,    // 429 or 503 with Retry-After, before any work
    kBadRequest,  // 4xx for a malformed request (expected for those)
    kHungUp,      // we disconnected mid-stream on purpose
    kProbed,      // a protocol probe (HEAD) answered as it must be
    kFailed,      // anything else: wrong status, truncated stream, timeout (stays last)
  };
  Kind kind = Kind::kFailed;
  int status = 0;
  bool retry_after = false;
  double latency_s = 0;  // to the end of the response (to the status line for rejections)
  int64_t completion_tokens = 0;
  std::string detail;  // for kFailed
};

const char* outcome_name(Outcome::Kind k);

// Builds a random request: `disconnect_p`, `malformed_p` and `probe_p` pick
// the kind.
Shot make_shot(std::mt19937_64& rng, double disconnect_p, double malformed_p, int max_tokens_lo, int max_tokens_hi,
               double probe_p = 0);

// Runs one request. `shot` is taken by reference (the caller's coroutine frame
// keeps it alive while suspended): GCC 12 double-destroys class temporaries
// built inside a co_await expression, so no Shot copy is made there.
boost::asio::awaitable<Outcome> run_shot(int port, const Shot& shot, std::chrono::milliseconds timeout);

}  // namespace pagoda::soak
