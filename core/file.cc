#include "core/file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace meridian::core {

std::string errnoText(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

bool writeAll(int fd, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

Result<void> finishReplace(int fd, const std::string& tmp, const std::string& path) {
  if (::fsync(fd) != 0) {
    Error e{errnoText("cannot fsync", tmp)};
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::close(fd) != 0) {
    Error e{errnoText("cannot close", tmp)};
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e{errnoText("cannot rename " + tmp + " to", path)};
    ::unlink(tmp.c_str());
    return e;
  }
  return {};
}

}  // namespace meridian::core
