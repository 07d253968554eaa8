#include "server/grammar_compiler.h"

#include <exception>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pagoda {

namespace asio = boost::asio;
using CompileResult = Result<std::shared_ptr<structured::CompiledGrammar>>;

GrammarCompiler::GrammarCompiler(structured::GrammarCache* cache) : cache_(cache) {}

GrammarCompiler::~GrammarCompiler() { stop(); }

asio::awaitable<CompileResult> GrammarCompiler::get(const structured::GrammarSpec& spec) {
  if (std::shared_ptr<structured::CompiledGrammar> found = cache_->find(spec)) co_return found;
  struct QueueSlot {  // released however the wait ends
    std::atomic<int>& queued;
    ~QueueSlot() { queued.fetch_sub(1); }
  } slot{queued_};
  if (queued_.fetch_add(1) >= kMaxQueued) {
    co_return Status::unavailable("the server is compiling " + std::to_string(kMaxQueued) +
                                  " other new grammars; retry shortly");
  }
  // co_spawn needs a default-constructible result (it makes one when the
  // coroutine throws), hence the optional; exceptions become errors here.
  auto compile = [this, &spec]() -> asio::awaitable<std::optional<CompileResult>> {
    if (stopping_) co_return CompileResult(Status::unavailable("the server is stopping"));
    try {
      co_return cache_->get(spec);
    } catch (const std::exception& e) {
      co_return CompileResult(Status::internal(std::string("compiling the grammar failed: ") + e.what()));
    }
  };
  std::optional<CompileResult> result = co_await asio::co_spawn(thread_, compile, asio::use_awaitable);
  co_return std::move(*result);
}

void GrammarCompiler::stop() {
  stopping_ = true;
  thread_.join();
}

}  // namespace pagoda
