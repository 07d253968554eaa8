#include "engine/model/model_config.h"

#include <cmath>
#include <sstream>

namespace pagoda {

namespace {

// Generous upper bounds that catch garbage headers before any size math can
// overflow: the largest published Llama models are far below all of them.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxHidden = 1 << 18;
constexpr int64_t kMaxLayers = 1 << 10;
constexpr int64_t kMaxHeads = 1 << 10;
constexpr int64_t kMaxHeadDim = 1 << 10;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxSeqLen = 1 << 22;

Status check_range(const char* field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    std::ostringstream os;
    os << "model config: " << field << " = " << value << " is out of range; allowed " << lo << ".." << hi;
    return Status::invalid_argument(os.str());
  }
  return Status::ok();
}

}  // namespace

const char* rope_layout_name(RopeLayout layout) {
  switch (layout) {
    case RopeLayout::kAdjacentPairs:
      return "adjacent_pairs";
    case RopeLayout::kHalves:
      return "halves";
  }
  return "unknown";
}

int64_t ModelConfig::num_parameters() const {
  const int64_t per_layer = 2 * dim + q_dim() * dim + 2 * kv_dim() * dim + dim * q_dim() + 3 * hidden_dim * dim;
  return vocab_size * dim * (tied_classifier ? 1 : 2) + n_layers * per_layer + dim;
}

Status ModelConfig::validate(bool require_dim_equals_heads) const {
  PAGODA_RETURN_IF_ERROR(check_range("dim", dim, 1, kMaxDim));
  PAGODA_RETURN_IF_ERROR(check_range("hidden_dim", hidden_dim, 1, kMaxHidden));
  PAGODA_RETURN_IF_ERROR(check_range("n_layers", n_layers, 1, kMaxLayers));
  PAGODA_RETURN_IF_ERROR(check_range("n_heads", n_heads, 1, kMaxHeads));
  PAGODA_RETURN_IF_ERROR(check_range("n_kv_heads", n_kv_heads, 1, n_heads));
  PAGODA_RETURN_IF_ERROR(check_range("head_dim", head_dim, 2, kMaxHeadDim));
  PAGODA_RETURN_IF_ERROR(check_range("vocab_size", vocab_size, 1, kMaxVocab));
  PAGODA_RETURN_IF_ERROR(check_range("max_seq_len", max_seq_len, 1, kMaxSeqLen));
  PAGODA_RETURN_IF_ERROR(check_range("sliding_window", sliding_window, 0, kMaxSeqLen));
  std::ostringstream os;
  os << "model config: ";
  if (n_heads % n_kv_heads != 0) {
    os << "n_heads = " << n_heads << " must be a multiple of n_kv_heads = " << n_kv_heads;
    return Status::invalid_argument(os.str());
  }
  if (head_dim % 2 != 0) {
    os << "head_dim = " << head_dim << " must be even (RoPE rotates pairs)";
    return Status::invalid_argument(os.str());
  }
  if (require_dim_equals_heads && dim != n_heads * head_dim) {
    os << "dim = " << dim << " must equal n_heads * head_dim = " << n_heads << " * " << head_dim;
    return Status::invalid_argument(os.str());
  }
  if (!(rope_theta > 0.0f) || !std::isfinite(rope_theta)) {
    os << "rope_theta = " << rope_theta << " must be a positive finite number";
    return Status::invalid_argument(os.str());
  }
  if (rope_scaling.type != RopeScaling::Type::kNone) {
    const RopeScaling& r = rope_scaling;
    if (!(r.factor >= 1.0f) || !std::isfinite(r.factor)) {
      os << "rope_scaling.factor = " << r.factor << " must be a finite number >= 1";
      return Status::invalid_argument(os.str());
    }
    if (r.type == RopeScaling::Type::kLlama3 &&
        (!(r.low_freq_factor > 0.0f) || !(r.high_freq_factor > r.low_freq_factor) ||
         !std::isfinite(r.high_freq_factor) || r.original_max_position <= 0)) {
      os << "rope_scaling: need 0 < low_freq_factor (" << r.low_freq_factor << ") < high_freq_factor ("
         << r.high_freq_factor << ") and original_max_position_embeddings (" << r.original_max_position << ") > 0";
      return Status::invalid_argument(os.str());
    }
  }
  if (!(rms_eps > 0.0f) || rms_eps > 1.0f) {
    os << "rms_eps = " << rms_eps << " must be in (0, 1]";
    return Status::invalid_argument(os.str());
  }
  if (bos_id < 0 || bos_id >= vocab_size) {
    os << "bos_id = " << bos_id << " must be in 0.." << vocab_size - 1;
    return Status::invalid_argument(os.str());
  }
  if (eos_id < 0 || eos_id >= vocab_size) {
    os << "eos_id = " << eos_id << " must be in 0.." << vocab_size - 1;
    return Status::invalid_argument(os.str());
  }
  return Status::ok();
}

std::string ModelConfig::summary() const {
  std::ostringstream os;
  os << "dim=" << dim << " hidden=" << hidden_dim << " layers=" << n_layers << " heads=" << n_heads
     << " kv_heads=" << n_kv_heads << " head_dim=" << head_dim << " vocab=" << vocab_size << " max_seq=" << max_seq_len
     << " rope_theta=" << rope_theta << " rope=" << rope_layout_name(rope_layout) << " rms_eps=" << rms_eps
     << " classifier=" << (tied_classifier ? "tied" : "separate");
  if (sliding_window > 0) os << " sliding_window=" << sliding_window;
  if (rope_scaling.type == RopeScaling::Type::kLinear) os << " rope_scaling=linear(" << rope_scaling.factor << ")";
  if (rope_scaling.type == RopeScaling::Type::kLlama3) os << " rope_scaling=llama3(" << rope_scaling.factor << ")";
  return os.str();
}

}  // namespace pagoda
