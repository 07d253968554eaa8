#include "server/grammar_compiler.h"

#include <exception>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace pagoda {

namespace asio = boost::asio;
using CompileResult = Result<std::shared_ptr<structured::CompiledGrammar>>;

GrammarCompiler::GrammarCompiler(structured::GrammarCache* cache) : cache_(cache) {}

GrammarCompiler::~GrammarCompiler() { stop(); }

asio::awaitable<CompileResult> GrammarCompiler::get(const structured::GrammarSpec& spec) {
  // co_spawn needs a default-constructible result (it makes one when the
  // coroutine throws), hence the optional; exceptions become errors here.
  auto compile = [this, &spec]() -> asio::awaitable<std::optional<CompileResult>> {
    try {
      co_return cache_->get(spec);
    } catch (const std::exception& e) {
      co_return CompileResult(Status::internal(std::string("compiling the grammar failed: ") + e.what()));
    }
  };
  std::optional<CompileResult> result = co_await asio::co_spawn(thread_, compile, asio::use_awaitable);
  co_return std::move(*result);
}

void GrammarCompiler::stop() { thread_.join(); }

}  // namespace pagoda
