// tokenizer_bench: encode throughput (bytes/s, tokens/s) of the llama2.c BPE
// on a few KB of English text, median of several runs.
// Usage: tokenizer_bench [TOKENIZER_PATH] [RUNS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

const char* kParagraph =
    "The harbour town woke slowly that morning. Fishermen hauled their nets onto the pier while "
    "gulls argued over the scraps, and the baker on Quay Street opened his shutters at half past "
    "six, as he had done for thirty-one years. Nobody expected the storm. The forecast had promised "
    "light winds from the south-west, a little drizzle in the afternoon, nothing more. Yet by noon "
    "the sky over the headland had turned the colour of slate, and the first heavy drops were "
    "drumming on the tin roofs of the boat sheds. Margaret, who ran the small museum beside the "
    "lighthouse, closed the windows and counted the visitors still inside: a retired teacher, two "
    "students from the university, and a family of four who had come to see the old lenses. "
    "\"We'll wait it out,\" she told them, putting the kettle on. \"These squalls never last long.\" "
    "She was wrong about that, as it turned out, but the tea was good and the stories were better. "
    "The teacher explained how the great lens focused a single flame into a beam visible twenty "
    "miles away; the children measured the prisms with their hands; and the students, who were "
    "studying coastal engineering, argued about whether the sea wall would hold. At four o'clock "
    "the power failed. At five, the wind dropped as suddenly as it had risen, and they stepped "
    "outside into a washed, silver evening, the harbour calm again, the boats all safe.\n\n";

std::string model_path(const std::string& file) {
  const std::string local = std::string(PAGODA_SOURCE_DIR) + "/models/" + file;
  if (std::ifstream(local).good()) return local;
  return std::string(PAGODA_SOURCE_DIR) + "/../shared/models/" + file;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : model_path("tokenizer.bin");
  const int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 7;
  auto tok = pagoda::load_tokenizer(path);
  if (!tok) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  std::string text;
  while (text.size() < 6000) text += kParagraph;
  const size_t tokens = (*tok)->encode(text, true).size();

  constexpr int kIters = 200;
  std::vector<double> secs;
  for (int r = 0; r < runs; ++r) {
    size_t sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kIters; ++i) sink += (*tok)->encode(text, true).size();
    const auto t1 = std::chrono::steady_clock::now();
    if (sink != tokens * kIters) return 2;
    secs.push_back(std::chrono::duration<double>(t1 - t0).count() / kIters);
  }
  std::sort(secs.begin(), secs.end());
  const double med = secs[secs.size() / 2];
  std::printf("tokenizer %s (vocab %d)\n", path.c_str(), (*tok)->vocab_size());
  std::printf("text: %zu bytes -> %zu tokens (%.2f bytes/token)\n", text.size(), tokens,
              static_cast<double>(text.size()) / static_cast<double>(tokens));
  std::printf("encode: median %.1f us per text over %d runs x %d iters (min %.1f, max %.1f)\n", med * 1e6, runs, kIters,
              secs.front() * 1e6, secs.back() * 1e6);
  std::printf("throughput: %.1f MB/s, %.2f M tokens/s\n", static_cast<double>(text.size()) / med / 1e6,
              static_cast<double>(tokens) / med / 1e6);
  return 0;
}
