// Zone-file writer: a ZoneContent as RFC 1035 §5 master-file text that the loader reads back to the
// same content (owner spelling, TTLs, RDATA octets and order) and so to the same Zone digest; and
// the crash-safe file replacement the API's write-back will call. Control thread only.
//
// The text is regenerated, not edited: one line per record in canonical order, "$ORIGIN" first,
// owners relative to it where their spelling allows, an explicit TTL and class on every record,
// the owner left blank when it repeats. Comments, $TTL/$INCLUDE directives, parentheses and the
// layout of the original file are not kept (the records of $INCLUDEd files are written inline).
//
// RDATA is written in presentation form: our own for A, AAAA, NS, CNAME, DNAME, PTR, MX, SRV, SOA,
// TXT, SPF and CAA (TXT strings quoted, '"' and '\' escaped, other octets outside 0x20..0x7E as
// \DDD; names absolute, escaped as RFC 1035 §5.1 and RFC 4343 say); ldns's for the other types it
// knows, kept only when ldns reads it back to the same octets; RFC 3597 "\# <length> <hex>"
// otherwise (unknown types, RDATA a presentation form would not reproduce).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"
#include "zones/content.h"

namespace meridian::zones {

// The mnemonic the loader reads ("A", "TXT", ...), or RFC 3597 "TYPEnnn".
[[nodiscard]] std::string typeToText(uint16_t type);

// One RDATA in presentation form, as it goes after the type on a zone-file line (names absolute):
// what the API shows as a record's "content".
[[nodiscard]] std::string rdataToText(uint16_t type, std::span<const uint8_t> rdata);

// True for the types whose RDATA rdataToText() writes in its own presentation form (the list
// above), false for those it leaves to ldns or RFC 3597.
[[nodiscard]] bool nativeText(uint16_t type);

// The whole zone as master-file text.
[[nodiscard]] std::string zoneText(const ZoneContent& content);

// Replaces the file at `path` with `data` so that a crash at any moment leaves either the old file
// or the new one, complete: a temporary file in the same directory, written and fsync'ed, renamed
// over `path`, then the directory fsync'ed (the rename itself made durable). A symbolic link is
// followed (its target is replaced, the link kept); an existing file's permission bits are kept
// (a new file gets 0644). An error before the rename changes nothing (the temporary file is
// removed); a failed fsync of the directory after it is reported too: the new file is in place
// but may not survive a crash, so the caller must not acknowledge the change as durable.
[[nodiscard]] Result<void> writeFileAtomic(const std::string& path, std::string_view data);

// zoneText() written with writeFileAtomic().
[[nodiscard]] Result<void> writeZoneFile(const ZoneContent& content, const std::string& path);

}  // namespace meridian::zones
