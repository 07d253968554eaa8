// The config schema names the allowed values of each choice key as text (for
// its error messages and `pagoda config check`); the modules that own the
// types parse those names. This test keeps the two lists equal: a value the
// schema accepts always parses at start-up, and every value of the enums
// listed below is accepted by the schema. (A new enum value must be added to
// the list here; the test cannot enumerate an enum by itself.)
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "config/config_schema.h"
#include "engine/kernels/linear.h"
#include "engine/model/llama_model.h"
#include "formats/model_loader.h"
#include "kvpool/kv_dtype.h"

using namespace pagoda;

namespace {

// "one of a, b, c" -> {a, b, c}
std::vector<std::string> allowed_values(const std::string& path) {
  const ConfigField* f = find_config_field(path);
  REQUIRE(f != nullptr);
  const std::string prefix = "one of ";
  REQUIRE(f->allowed.rfind(prefix, 0) == 0);
  std::vector<std::string> out;
  std::string rest = f->allowed.substr(prefix.size());
  for (size_t pos = 0; pos != std::string::npos;) {
    const size_t comma = rest.find(", ", pos);
    out.push_back(rest.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    pos = comma == std::string::npos ? comma : comma + 2;
  }
  return out;
}

template <typename Enum, typename Parse, typename Name>
void check_same_names(const std::string& path, const std::vector<Enum>& all, Parse parse, Name name) {
  const std::vector<std::string> allowed = allowed_values(path);
  for (const std::string& v : allowed) {
    INFO(path << " allows '" << v << "'");
    CHECK(parse(v).is_ok());
  }
  std::vector<std::string> names;
  for (Enum e : all) names.push_back(name(e));
  CHECK(names == allowed);
  CHECK_FALSE(parse("no-such-value").is_ok());
}

}  // namespace

TEST_CASE("config choices: the schema allows exactly the names the owning modules parse") {
  check_same_names<KvDtype>(
      "kv.dtype", {KvDtype::kF32, KvDtype::kBF16, KvDtype::kF16, KvDtype::kInt8, KvDtype::kInt4},
      [](const std::string& s) { return parse_kv_dtype(s); }, kv_dtype_name);
  // model.weight_dtype: "auto" (the file's precision per matrix) and every WeightDtype.
  std::vector<std::string> weight_names = {"auto"};
  for (WeightDtype d : {WeightDtype::kF32, WeightDtype::kBF16, WeightDtype::kInt8, WeightDtype::kInt4})
    weight_names.push_back(weight_dtype_name(d));
  CHECK(allowed_values("model.weight_dtype") == weight_names);
  for (const std::string& v : weight_names) CHECK(parse_weight_choice(v).is_ok());
  CHECK(!parse_weight_choice("auto").value().has_value());
  CHECK_FALSE(parse_weight_choice("int3").is_ok());
  const std::vector<std::string> formats = allowed_values("model.format");
  CHECK(formats == std::vector<std::string>{"auto", "llama2c", "hf", "gguf"});
  for (const std::string& v : formats) CHECK(parse_model_format(v).is_ok());
  CHECK_FALSE(parse_model_format("gguf-or-anything-else").is_ok());
  CHECK(allowed_values("scheduler.policy") == std::vector<std::string>{"fcfs", "priority"});
}
