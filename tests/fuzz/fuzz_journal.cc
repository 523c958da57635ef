// libFuzzer target: arbitrary bytes as the records of a zone journal (zones/journal.h) after a
// valid header: Journal::open (framing, CRC32C, serial chain, torn-tail truncation), then latest()
// (snapshot and diff decoding, apply) and diffsSince() of every serial it holds. Any crash or
// sanitizer report is a bug; a refusal must come with a message. The CRC keeps most mutations at
// the framing; seeds are real journals, so the decoders see well-framed records too.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/file.h"
#include "zones/journal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian;
  dns::NameBuf apex;
  if (!dns::fromText("example.com.", apex)) std::abort();
  std::string file("MRDNJRN1", 8);
  file.push_back(static_cast<char>(apex.length));
  file.append(reinterpret_cast<const char*>(apex.data), apex.length);
  uint8_t crc[4];
  dns::writeU32(crc, zones::crc32c(file.data(), file.size()));
  file.append(reinterpret_cast<const char*>(crc), 4);
  file.append(reinterpret_cast<const char*>(data), size);

  char path[] = "/tmp/fuzz_journal-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0 || !core::writeAll(fd, file.data(), file.size())) std::abort();
  ::close(fd);
  std::vector<std::string> warnings;
  auto j = zones::Journal::open(path, apex, {}, warnings);
  if (!j.has_value() && j.error().message.empty()) std::abort();
  if (j.has_value() && !j->empty()) {
    auto latest = j->latest();
    if (!latest.has_value() && latest.error().message.empty()) std::abort();
    for (const auto& e : j->entries()) {
      auto since = j->diffsSince(e.old_serial);
      if (!since.has_value() && since.error().message.empty()) std::abort();
    }
  }
  ::unlink(path);
  return 0;
}
