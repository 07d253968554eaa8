#include "formats/model_loader.h"

#include <filesystem>
#include <system_error>

#include "formats/gguf_reader.h"
#include "formats/hf_reader.h"
#include "formats/llama2c_reader.h"
#include "gguf/gguf_file.h"

namespace pagoda {

Result<ModelFormat> parse_model_format(const std::string& name) {
  if (name == "auto") return ModelFormat::kAuto;
  if (name == "llama2c") return ModelFormat::kLlama2c;
  if (name == "hf") return ModelFormat::kHf;
  if (name == "gguf") return ModelFormat::kGguf;
  return Status::invalid_argument("model format '" + name + "' is not known; allowed: auto, llama2c, hf, gguf");
}

Result<std::unique_ptr<LoadedModel>> load_model(const std::string& path, ModelFormat format,
                                                const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return Status::not_found(path + ": model path does not exist");
  if (format == ModelFormat::kAuto) {
    if (fs::is_directory(st)) {
      if (!fs::exists(fs::path(path) / "config.json", ec)) {
        return Status::invalid_argument(path +
                                        ": model directory has no config.json (expected a Hugging Face model "
                                        "directory or a llama2.c .bin file)");
      }
      format = ModelFormat::kHf;
    } else {
      format = is_gguf_file(path) ? ModelFormat::kGguf : ModelFormat::kLlama2c;
    }
  }
  switch (format) {
    case ModelFormat::kLlama2c:
      return Llama2cReader().read(path);
    case ModelFormat::kHf:
      if (!fs::is_directory(st))
        return Status::invalid_argument(path +
                                        ": format hf needs a model directory "
                                        "(config.json + model.safetensors)");
      return HfReader().read(path);
    case ModelFormat::kGguf:
      return GgufReader(options.expand_matrices).read(path);
    case ModelFormat::kAuto:
      break;
  }
  return Status::internal("load_model: unhandled format");
}

}  // namespace pagoda
