// memory_file: fuzz input bytes as an in-memory file (memfd), for readers
// that take a path and map it like any file. The caller closes the
// descriptor; the path is "/proc/self/fd/<fd>".
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_check.h"

namespace pagoda::fuzz {

inline int memory_file(const uint8_t* data, size_t size) {
  const int fd = memfd_create("pagoda-fuzz-file", 0);
  FUZZ_CHECK(fd >= 0);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    FUZZ_CHECK(n > 0);
    written += static_cast<size_t>(n);
  }
  return fd;
}

}  // namespace pagoda::fuzz
