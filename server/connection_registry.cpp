#include "server/connection_registry.h"

#include <vector>

namespace pagoda {

std::shared_ptr<ConnectionRegistry::Entry> ConnectionRegistry::add(boost::asio::any_io_executor strand,
                                                                   boost::beast::tcp_stream* stream) {
  auto entry = std::make_shared<Entry>();
  entry->strand = std::move(strand);
  entry->stream = stream;
  MutexLock lock(mu_);
  entries_.insert(entry);
  return entry;
}

void ConnectionRegistry::remove(const std::shared_ptr<Entry>& entry) {
  entry->open = false;
  entry->stream = nullptr;
  MutexLock lock(mu_);
  entries_.erase(entry);
}

void ConnectionRegistry::close_idle() {
  std::vector<std::shared_ptr<Entry>> all;
  {
    MutexLock lock(mu_);
    all.assign(entries_.begin(), entries_.end());
  }
  for (auto& e : all)
    boost::asio::post(e->strand, [e] {
      if (!e->open || !e->idle) return;
      boost::system::error_code ec;
      e->stream->socket().cancel(ec);
    });
}

}  // namespace pagoda
