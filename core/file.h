// Replacing a file atomically: what the zone-file writer (zones/writer.cc) and the mmdb writer
// (tools/mmdb_writer.cc) share once they have written the new content to a temporary file next to
// the target. Control side only (blocking I/O).
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace meridian::core {

// "WHAT PATH: <strerror(errno)>".
[[nodiscard]] std::string errnoText(const std::string& what, const std::string& path);

// Writes all `n` octets, retrying after EINTR; false (errno set) on an error.
[[nodiscard]] bool writeAll(int fd, const void* data, size_t n);

// Ends a replacement: fsync of `fd` (open on `tmp`), close, rename of `tmp` onto `path`. On any
// failure `tmp` is removed and the error names the step and the file; `fd` is closed either way.
// Making the rename itself durable (fsync of the directory) is the caller's choice.
[[nodiscard]] Result<void> finishReplace(int fd, const std::string& tmp, const std::string& path);

}  // namespace meridian::core
