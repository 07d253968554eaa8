#include "tokenizer/tokenizer_llama2c.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "tokenizer/tokenizer_utf8.h"

namespace pagoda {
namespace {

// Limits that no real vocabulary comes near; beyond them the file is corrupt.
constexpr int32_t kMaxPieceBytes = 1 << 16;
constexpr size_t kMaxVocab = size_t{1} << 24;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// The byte of a "<0xXX>" piece, or -1 for any other piece.
int byte_piece_value(std::string_view p) {
  if (p.size() != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
  const int hi = hex_value(p[3]), lo = hex_value(p[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

template <typename T>
T read_le(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the file is little-endian, like this machine
  return v;
}

}  // namespace

Result<std::unique_ptr<Llama2cTokenizer>> Llama2cTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("tokenizer file '" + path + "': cannot open for reading");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::data_loss("tokenizer file '" + path + "': read error");
  return parse(bytes, path);
}

Result<std::unique_ptr<Llama2cTokenizer>> Llama2cTokenizer::parse(std::string_view bytes, const std::string& name) {
  auto fail = [&name](const std::string& what) { return Status::data_loss("tokenizer file '" + name + "': " + what); };
  if (bytes.size() < 4) {
    return fail("truncated: " + std::to_string(bytes.size()) +
                " bytes, too short for the int32 max_token_length header");
  }
  if (bytes.size() > (size_t{1} << 31)) {
    return fail("absurd size " + std::to_string(bytes.size()) + " bytes (a vocabulary is at most a few MB)");
  }
  std::unique_ptr<Llama2cTokenizer> tok(new Llama2cTokenizer());
  tok->max_token_length_ = read_le<int32_t>(bytes.data());
  if (tok->max_token_length_ <= 0 || tok->max_token_length_ > kMaxPieceBytes) {
    return fail("absurd max_token_length " + std::to_string(tok->max_token_length_) + " (allowed 1.." +
                std::to_string(kMaxPieceBytes) + "); is this a tokenizer.bin?");
  }
  size_t off = 4;
  while (off < bytes.size()) {
    const size_t index = tok->pieces_.size();
    const std::string where = "token " + std::to_string(index) + " at offset " + std::to_string(off);
    if (index >= kMaxVocab) return fail("more than " + std::to_string(kMaxVocab) + " tokens");
    if (bytes.size() - off < 8) return fail("truncated in the score/length of " + where);
    const auto score = read_le<float>(bytes.data() + off);
    const auto len = read_le<int32_t>(bytes.data() + off + 4);
    off += 8;
    if (!std::isfinite(score)) return fail("non-finite score for " + where);
    if (len < 0 || len > kMaxPieceBytes) {
      return fail("absurd byte length " + std::to_string(len) + " for " + where + " (allowed 0.." +
                  std::to_string(kMaxPieceBytes) + ")");
    }
    if (bytes.size() - off < static_cast<size_t>(len)) {
      return fail("truncated: " + where + " needs " + std::to_string(len) + " bytes, " +
                  std::to_string(bytes.size() - off) + " left");
    }
    tok->pieces_.emplace_back(bytes.substr(off, static_cast<size_t>(len)));
    tok->scores_.push_back(score);
    off += static_cast<size_t>(len);
  }
  if (tok->pieces_.size() < 3) {
    return fail("holds " + std::to_string(tok->pieces_.size()) + " tokens; need at least 3 (<unk>, BOS, EOS)");
  }
  tok->build_tables();
  return tok;
}

void Llama2cTokenizer::build_tables() {
  byte_to_id_.fill(-1);
  decoded_.resize(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (id == kUnk || id == kBos || id == kEos) continue;  // decode to ""
    const int b = byte_piece_value(pieces_[i]);
    if (b >= 0) {
      decoded_[i] = std::string(1, static_cast<char>(b));
      if (byte_to_id_[static_cast<size_t>(b)] < 0) byte_to_id_[static_cast<size_t>(b)] = id;
      continue;
    }
    decoded_[i] = pieces_[i];
    if (!pieces_[i].empty()) piece_to_id_.insert(pieces_[i], id);  // keeps the lowest id
  }
  eos_ids_ = {kEos, kBos};
  // Encoding may run word by word if no mergeable piece holds a non-space
  // byte followed by a space: then no merge can cross such a boundary.
  split_before_space_ = true;
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const std::string& piece = pieces_[i];
    if (piece_to_id_.find(piece) != static_cast<int32_t>(i)) continue;  // not mergeable
    for (size_t k = 1; k < piece.size(); ++k) {
      if (piece[k] == ' ' && piece[k - 1] != ' ') split_before_space_ = false;
    }
  }  // llama2.c also stops when the model emits BOS
}

int32_t Llama2cTokenizer::lookup(std::string_view s) const { return piece_to_id_.find(s); }

std::string_view Llama2cTokenizer::decode_piece(int32_t id) const {
  return is_valid_id(id) ? std::string_view(decoded_[static_cast<size_t>(id)]) : std::string_view();
}

std::string_view Llama2cTokenizer::token_text(int32_t id) const {
  return is_valid_id(id) ? std::string_view(pieces_[static_cast<size_t>(id)]) : std::string_view();
}

namespace {

// One UTF-8 character (or invalid byte) of a segment; symbols form a doubly
// linked list, and a merge grows the left one and kills the right (len 0).
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
struct Symbol {
  uint32_t start, len, prev, next;
  int32_t id;  // vocabulary id, or -1 (falls back to bytes)
  bool raw;    // an invalid UTF-8 byte: never merged
};
// A candidate merge of symbols `left` and `right` as they were when queued;
// stale once either has changed length.
struct Pair {
  float score;
  uint32_t left, right, left_len, right_len;
  int32_t id;
};
// Heap order: highest score on top; on ties the leftmost pair (SentencePiece).
bool lower_priority(const Pair& a, const Pair& b) {
  return a.score < b.score || (a.score == b.score && a.left > b.left);
}

}  // namespace

// Scratch space for one encode() call, reused across its segments.
struct Llama2cTokenizer::Scratch {
  std::vector<Symbol> sym;
  std::vector<Pair> heap;
};

void Llama2cTokenizer::encode_segment(std::string_view s, Scratch& sc, std::vector<int32_t>& out) const {
  auto& sym = sc.sym;
  auto& heap = sc.heap;
  sym.clear();
  heap.clear();
  for (size_t i = 0; i < s.size();) {
    const Utf8Scan u = utf8_scan(s.substr(i));
    const bool valid = u.kind == Utf8Kind::kValid;
    const size_t len = valid ? u.length : 1;
    const auto n = static_cast<uint32_t>(sym.size());
    sym.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(len), n == 0 ? kNone : n - 1, kNone,
                   valid ? lookup(s.substr(i, len)) : -1, !valid});
    if (n > 0) sym[n - 1].next = n;
    i += len;
  }
  auto try_push = [&](uint32_t l, uint32_t r) {
    if (l == kNone || r == kNone || sym[l].raw || sym[r].raw) return;
    const int32_t id = lookup(s.substr(sym[l].start, sym[l].len + sym[r].len));
    if (id < 0) return;
    heap.push_back({scores_[static_cast<size_t>(id)], l, r, sym[l].len, sym[r].len, id});
    std::push_heap(heap.begin(), heap.end(), lower_priority);
  };
  for (uint32_t i = 0; i + 1 < sym.size(); ++i) try_push(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower_priority);
    const Pair p = heap.back();
    heap.pop_back();
    Symbol& l = sym[p.left];
    Symbol& r = sym[p.right];
    if (l.len != p.left_len || r.len != p.right_len) continue;  // stale
    l.len += r.len;
    l.id = p.id;
    l.next = r.next;
    if (r.next != kNone) sym[r.next].prev = p.left;
    r.len = 0;
    try_push(l.prev, p.left);
    try_push(p.left, l.next);
  }

  for (uint32_t i = 0; i != kNone; i = sym[i].next) {
    if (sym[i].id >= 0) {
      out.push_back(sym[i].id);
      continue;
    }
    for (uint32_t k = 0; k < sym[i].len; ++k) {
      const int32_t b = byte_to_id_[static_cast<uint8_t>(s[sym[i].start + k])];
      out.push_back(b >= 0 ? b : kUnk);
    }
  }
}

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos) out.push_back(kBos);
  if (text.empty()) return out;  // no dummy prefix for empty text (as SentencePiece)

  std::string norm;
  norm.reserve(text.size() + 1);
  norm.push_back(' ');  // the dummy prefix
  norm.append(text);
  const std::string_view s(norm);
  out.reserve(out.size() + s.size() / 3 + 8);

  // Segments end before a space that follows a non-space byte (when no
  // piece spans such a boundary, see build_tables), and are at most
  // kMaxSegment bytes (32-bit offsets; a longer run of one word is cut).
  constexpr size_t kMaxSegment = size_t{1} << 30;
  Scratch scratch;
  size_t begin = 0;
  for (size_t i = 1; i <= s.size(); ++i) {
    const bool end =
        i == s.size() || (split_before_space_ && s[i] == ' ' && s[i - 1] != ' ') || i - begin >= kMaxSegment;
    if (!end) continue;
    encode_segment(s.substr(begin, i - begin), scratch, out);
    begin = i;
  }
  return out;
}

}  // namespace pagoda
