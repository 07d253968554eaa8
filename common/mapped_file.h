// MappedFile: a whole file memory-mapped read-only (mmap, MAP_PRIVATE).
// Owns the mapping and unmaps it on destruction; movable, not copyable.
// The bytes are immutable, so concurrent reads from any thread are safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace pagoda {

class MappedFile {
 public:
  // Maps `path`; NotFound if it does not exist, InvalidArgument if it is not
  // a regular file or cannot be read, DataLoss if it is empty.
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pagoda
