// Helpers shared by the fuzz targets (header-only, tests/fuzz/ only): a failed property aborts, so
// libFuzzer reports it as a crash; an in-memory file for readers that want a path; and a GeoIP
// database built with our writer and opened the way the server opens one.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "georoute/geoip.h"
#include "tools/mmdb_writer.h"

namespace meridian::fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

// A memfd reachable as /proc/self/fd/N: the input becomes a file without touching the disk.
class MemFile {
 public:
  explicit MemFile(const char* name) : fd_(memfd_create(name, 0)) {
    check(fd_ >= 0);
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  ~MemFile() { close(fd_); }

  // Replaces the contents with `data`.
  void assign(const uint8_t* data, size_t size) {
    check(ftruncate(fd_, 0) == 0);
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      check(n > 0);
      done += static_cast<size_t>(n);
    }
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Writes the database to a temporary file, opens it with GeoDatabase::open and removes the file
// (libmaxminddb keeps its mapping). Aborts if either step fails: the harness is broken then.
inline std::shared_ptr<const georoute::GeoDatabase> openWritten(const tools::MmdbWriter& w,
                                                                const char* tag) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("meridian_fuzz_" + std::to_string(getpid()) + "_" + tag + ".mmdb"))
                               .string();
  check(w.write(path).has_value());
  auto db = georoute::GeoDatabase::open(path);
  std::filesystem::remove(path);
  check(db.has_value());
  return *db;
}

// One network of a writer's map; aborts on a network the writer refuses.
inline void addNetwork(tools::MmdbWriter& w, const char* address, unsigned prefix,
                       tools::MmdbRecord r) {
  check(w.add({boost::asio::ip::make_address(address), prefix, std::move(r)}).has_value());
}

}  // namespace meridian::fuzz
