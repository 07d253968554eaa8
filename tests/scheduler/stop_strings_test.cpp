// Stop-string search and streaming hold-back against hand-worked cases.
#include <catch2/catch.hpp>

#include "scheduler/stop_strings.h"

using namespace pagoda;

TEST_CASE("find_stop_string finds matches across the old/new boundary, earliest first") {
  const std::vector<std::string> stops = {"END", "\n\n"};
  CHECK(find_stop_string("hello", 0, stops) == std::string::npos);
  CHECK(find_stop_string("abcEND", 3, stops) == 3);
  CHECK(find_stop_string("abcEN"
                         "D",
                         5, stops) == 3);                            // the match ends in the new byte
  CHECK(find_stop_string("a\n\nb END", 2, stops) == 1);              // earliest of two
  CHECK(find_stop_string("a\n\nb END", 4, stops) == 5);              // "\n\n" ended in the checked part
  CHECK(find_stop_string("ENDxyz", 6, stops) == std::string::npos);  // already checked region only
  CHECK(find_stop_string("", 0, stops) == std::string::npos);
}

TEST_CASE("stop_holdback keeps back a suffix that may still become a stop string") {
  const std::vector<std::string> stops = {"END", "STOP!"};
  CHECK(stop_holdback("hello", stops) == 0);
  CHECK(stop_holdback("hello E", stops) == 1);
  CHECK(stop_holdback("hello EN", stops) == 2);
  CHECK(stop_holdback("hello STO", stops) == 3);
  CHECK(stop_holdback("hello STOP", stops) == 4);
  CHECK(stop_holdback("ST", {}) == 0);
}
