#include "georoute/geoip.h"

#include <endian.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace meridian::georoute {

std::string unpackCode(uint16_t code) {
  if (code == 0) return "";
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}

uint32_t packSubdivision(const char* s, size_t len) {
  if (len == 0 || len > 3) return 0;
  uint32_t v = 0;
  for (size_t i = 0; i < 3; ++i) {
    uint8_t c = i < len ? static_cast<uint8_t>(s[i]) : 0u;
    if (c >= 'a' && c <= 'z') c = static_cast<uint8_t>(c - 'a' + 'A');
    v = (v << 8) | c;
  }
  return v;
}

std::string unpackSubdivision(uint32_t code) {
  std::string out;
  for (int shift = 16; shift >= 0; shift -= 8) {
    const char c = static_cast<char>((code >> shift) & 0xFF);
    if (c != 0) out.push_back(c);
  }
  return out;
}

GeoDatabase::~GeoDatabase() {
  if (open_) MMDB_close(&mmdb_);
}

namespace {

bool getString(MMDB_entry_s* entry, std::string& out, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) return false;
  if (data.type != MMDB_DATA_TYPE_UTF8_STRING) return false;
  out.assign(data.utf8_string, data.data_size);
  return true;
}

bool getDouble(MMDB_entry_s* entry, double& out, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) return false;
  if (data.type == MMDB_DATA_TYPE_DOUBLE) {
    out = data.double_value;
    return true;
  }
  if (data.type == MMDB_DATA_TYPE_FLOAT) {
    out = data.float_value;
    return true;
  }
  return false;
}

bool getUint(MMDB_entry_s* entry, uint32_t& out, const char* const* path) {
  MMDB_entry_data_s data;
  if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS || !data.has_data) return false;
  switch (data.type) {
    case MMDB_DATA_TYPE_UINT16:
      out = data.uint16;
      return true;
    case MMDB_DATA_TYPE_UINT32:
      out = data.uint32;
      return true;
    case MMDB_DATA_TYPE_INT32:
      out = static_cast<uint32_t>(data.int32);
      return true;
    case MMDB_DATA_TYPE_UINT64:
      out = static_cast<uint32_t>(data.uint64);
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<std::shared_ptr<const GeoDatabase>> GeoDatabase::open(const std::string& path) {
  std::shared_ptr<GeoDatabase> db(new GeoDatabase());
  db->path_ = path;
  // libmaxminddb maps the file it opens. Serving from a mapping of the operator's file would let an
  // in-place rewrite change answers under the workers (or SIGBUS them when it shrinks), so the file
  // is copied into a private memory file first and that copy is what gets checked and served.
  const int src = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return Error{path + ": cannot open GeoIP database: " + std::strerror(errno)};
  const int mem = ::memfd_create("meridian-geoip", MFD_CLOEXEC);
  if (mem < 0) {
    ::close(src);
    return Error{path + ": cannot create a private copy: " + std::strerror(errno)};
  }
  char buf[1 << 16];
  ssize_t got;
  while ((got = ::read(src, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < got;) {
      const ssize_t w = ::write(mem, buf + off, static_cast<size_t>(got - off));
      if (w < 0) {
        ::close(src);
        ::close(mem);
        return Error{path + ": cannot copy: " + std::strerror(errno)};
      }
      off += w;
    }
  }
  ::close(src);
  if (got < 0) {
    ::close(mem);
    return Error{path + ": read error: " + std::strerror(errno)};
  }
  const std::string copy = "/proc/self/fd/" + std::to_string(mem);
  const int status = MMDB_open(copy.c_str(), MMDB_MODE_MMAP, &db->mmdb_);
  ::close(mem);  // the mapping keeps the memory file alive
  if (status != MMDB_SUCCESS) {
    std::string why = MMDB_strerror(status);
    if (status == MMDB_IO_ERROR) why += std::string(": ") + std::strerror(errno);
    if (status == MMDB_INVALID_METADATA_ERROR || status == MMDB_UNKNOWN_DATABASE_FORMAT_ERROR) {
      why += " (not a MaxMind DB file, or truncated)";
    }
    return Error{path + ": cannot open GeoIP database: " + why};
  }
  db->open_ = true;
  db->type_ = db->mmdb_.metadata.database_type != nullptr ? db->mmdb_.metadata.database_type : "";
  db->build_epoch_ = db->mmdb_.metadata.build_epoch;
  const uint32_t node_count = db->mmdb_.metadata.node_count;
  if (node_count == 0) return Error{path + ": GeoIP database has an empty search tree"};

  // Walk every node once (a visited bitmap guards against cycles) and collect data offsets.
  // A lookup descends at most one node per address bit; a deeper path is a corrupt tree.
  const uint32_t max_depth = db->mmdb_.metadata.ip_version == 6 ? 128 : 32;
  std::vector<bool> visited(node_count, false);
  std::vector<std::pair<uint32_t, uint32_t>> stack{{0, 0}};
  std::vector<uint32_t> offsets;
  visited[0] = true;
  while (!stack.empty()) {
    const auto [n, depth] = stack.back();
    stack.pop_back();
    MMDB_search_node_s node;
    if (MMDB_read_node(&db->mmdb_, n, &node) != MMDB_SUCCESS) {
      return Error{path + ": corrupt search tree at node " + std::to_string(n)};
    }
    const uint64_t records[2] = {node.left_record, node.right_record};
    const uint8_t types[2] = {node.left_record_type, node.right_record_type};
    const MMDB_entry_s entries[2] = {node.left_record_entry, node.right_record_entry};
    for (int side = 0; side < 2; ++side) {
      switch (types[side]) {
        case MMDB_RECORD_TYPE_SEARCH_NODE:
          if (records[side] >= node_count) {
            return Error{path + ": corrupt search tree: node " + std::to_string(n) +
                         " points outside the tree"};
          }
          if (depth + 1 >= max_depth) {
            return Error{path + ": corrupt search tree: deeper than " + std::to_string(max_depth) +
                         " bits at node " + std::to_string(n)};
          }
          if (!visited[records[side]]) {
            visited[records[side]] = true;
            stack.emplace_back(static_cast<uint32_t>(records[side]), depth + 1);
          }
          break;
        case MMDB_RECORD_TYPE_EMPTY:
          break;
        case MMDB_RECORD_TYPE_DATA:
          offsets.push_back(entries[side].offset);
          break;
        default:
          return Error{path + ": corrupt search tree: invalid record in node " + std::to_string(n)};
      }
    }
  }
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());

  std::map<std::string, uint32_t> region_index;
  static const char* const kContinent[] = {"continent", "code", nullptr};
  static const char* const kCountry[] = {"country", "iso_code", nullptr};
  static const char* const kRegisteredCountry[] = {"registered_country", "iso_code", nullptr};
  static const char* const kSubdivision[kMaxSubdivisions][4] = {
      {"subdivisions", "0", "iso_code", nullptr},
      {"subdivisions", "1", "iso_code", nullptr},
      {"subdivisions", "2", "iso_code", nullptr},
      {"subdivisions", "3", "iso_code", nullptr}};
  static const char* const kLatitude[] = {"location", "latitude", nullptr};
  static const char* const kLongitude[] = {"location", "longitude", nullptr};
  static const char* const kAsn[] = {"autonomous_system_number", nullptr};
  static const char* const kRegion[] = {"meridian_region", nullptr};
  for (uint32_t off : offsets) {
    MMDB_entry_s entry{&db->mmdb_, off};
    // Decoding the whole record checks every type, length and pointer in it.
    MMDB_entry_data_list_s* list = nullptr;
    const int st = MMDB_get_entry_data_list(&entry, &list);
    MMDB_free_entry_data_list(list);
    if (st != MMDB_SUCCESS) {
      return Error{path + ": corrupt data record at offset " + std::to_string(off) + ": " +
                   MMDB_strerror(st)};
    }
    Location loc;
    std::string s;
    if (getString(&entry, s, kContinent)) loc.continent = packCode(s.data(), s.size());
    if (getString(&entry, s, kCountry)) loc.country = packCode(s.data(), s.size());
    if (getString(&entry, s, kRegisteredCountry))
      loc.registered_country = packCode(s.data(), s.size());
    // Every level, in the database's order; a level without a usable code ends the list, so
    // the kept codes stay a most-general-first chain.
    for (const auto* path : kSubdivision) {
      if (!getString(&entry, s, path)) break;
      const uint32_t code = packSubdivision(s.data(), s.size());
      if (code == 0) break;
      loc.subdivisions[loc.subdivision_count++] = code;
    }
    double lat = 0, lon = 0;
    if (getDouble(&entry, lat, kLatitude) && getDouble(&entry, lon, kLongitude)) {
      loc.has_coords = true;
      loc.latitude = lat;
      loc.longitude = lon;
    }
    (void)getUint(&entry, loc.asn, kAsn);
    if (getString(&entry, s, kRegion)) {
      auto [it, inserted] =
          region_index.try_emplace(s, static_cast<uint32_t>(db->region_names_.size()));
      if (inserted) db->region_names_.push_back(s);
      loc.region_name = it->second;
    }
    db->locations_.push_back(loc);
  }
  db->offsets_ = std::move(offsets);
  return std::shared_ptr<const GeoDatabase>(std::move(db));
}

namespace {

constexpr uint32_t kMixed = 0xFFFFFFFFu;

struct Aggregator {
  const MMDB_s* mmdb;
  const std::vector<uint32_t>* offsets;
  const std::function<uint32_t(int32_t)>* leaf_class;
  unsigned max_depth;  // bits in the client's family
  unsigned skip;       // tree bits above the family's subtree (96 for IPv4 in an IPv6 tree)
  std::vector<Block>* out;
  // Nodes left to visit. open() checks that every node is reachable and well-formed, not that the
  // tree is a tree: records of a crafted file may share subtrees, and a walk by path then visits a
  // chain of n shared nodes 2^n times (fuzz_mmdb). A real database visits each node once, or a few
  // times where MaxMind aliases the IPv4 subtree (::ffff:0:0/96, 2001::/32, 2002::/16), so the
  // walk gives up beyond kVisitsPerNode visits per node.
  mutable uint64_t budget;
  mutable bool exhausted = false;

  uint32_t leaf(uint8_t type, const MMDB_entry_s& entry) const {
    if (type != MMDB_RECORD_TYPE_DATA) return (*leaf_class)(-1);
    auto it = std::lower_bound(offsets->begin(), offsets->end(), entry.offset);
    return (*leaf_class)(static_cast<int32_t>(it - offsets->begin()));
  }

  static void setBit(uint8_t* a, unsigned bit) {
    a[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
  }

  // Class of the subtree at `node` (depth bits of `addr` fixed), emitting uniform children of
  // mixed nodes as blocks.
  uint32_t visit(uint32_t node, unsigned depth, const uint8_t* addr) const {
    if (budget == 0) {
      exhausted = true;
      return kMixed;
    }
    --budget;
    MMDB_search_node_s n;
    if (MMDB_read_node(const_cast<MMDB_s*>(mmdb), node, &n) != MMDB_SUCCESS) return kMixed;
    uint32_t cls[2];
    uint8_t child[2][16];
    const uint8_t types[2] = {n.left_record_type, n.right_record_type};
    const uint64_t records[2] = {n.left_record, n.right_record};
    const MMDB_entry_s entries[2] = {n.left_record_entry, n.right_record_entry};
    for (int side = 0; side < 2; ++side) {
      std::memcpy(child[side], addr, 16);
      if (side == 1) setBit(child[side], depth);
      if (types[side] == MMDB_RECORD_TYPE_SEARCH_NODE && depth + 1 < max_depth) {
        cls[side] = visit(static_cast<uint32_t>(records[side]), depth + 1, child[side]);
      } else {
        cls[side] = leaf(types[side], entries[side]);
      }
    }
    if (cls[0] == cls[1] && cls[0] != kMixed) return cls[0];
    for (int side = 0; side < 2; ++side) {
      if (cls[side] == kMixed) continue;
      Block b;
      std::memcpy(b.address, child[side], 16);
      b.prefix = static_cast<uint8_t>(depth + 1);
      b.leaf_class = cls[side];
      out->push_back(b);
    }
    return kMixed;
  }
};

}  // namespace

void GeoDatabase::aggregateImpl(bool ipv6, const std::function<uint32_t(int32_t)>& leaf_class,
                                std::vector<Block>& out) const {
  const bool tree_v6 = mmdb_.metadata.ip_version == 6;
  if (ipv6 && !tree_v6) return;  // no IPv6 data: callers keep the lookup's prefix
  constexpr uint64_t kVisitsPerNode = 8;
  Aggregator ag{&mmdb_,
                &offsets_,
                &leaf_class,
                ipv6 ? 128u : 32u,
                0,
                &out,
                kVisitsPerNode * mmdb_.metadata.node_count + 2};
  // Find the IPv4 subtree: 96 left turns from the root in an IPv6 tree.
  uint32_t node = 0;
  if (!ipv6 && tree_v6) {
    for (unsigned i = 0; i < 96; ++i) {
      MMDB_search_node_s n;
      if (MMDB_read_node(const_cast<MMDB_s*>(&mmdb_), node, &n) != MMDB_SUCCESS) return;
      if (n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) {
        Block all;  // all of IPv4 is one leaf
        all.leaf_class = ag.leaf(n.left_record_type, n.left_record_entry);
        out.push_back(all);
        return;
      }
      node = static_cast<uint32_t>(n.left_record);
    }
  }
  const uint8_t zero[16] = {};
  if (const uint32_t all = ag.visit(node, 0, zero); all != kMixed) {
    Block b;  // one class everywhere
    b.leaf_class = all;
    out.push_back(b);
  }
  if (ag.exhausted) {
    out.clear();  // the walk gave up: no blocks, so callers keep the lookup's prefix
    return;
  }
  // By address, as two big-endian words (a memcmp call per comparison was most of the compile).
  auto word = [](const Block& b, size_t i) {
    uint64_t w;
    std::memcpy(&w, b.address + 8 * i, 8);
    return be64toh(w);
  };
  std::sort(out.begin(), out.end(), [&](const Block& a, const Block& b) {
    const uint64_t a0 = word(a, 0), b0 = word(b, 0);
    return a0 != b0 ? a0 < b0 : word(a, 1) < word(b, 1);
  });
}

GeoResult GeoDatabase::lookup(const uint8_t* address, bool ipv6) const {
  GeoResult r;
  sockaddr_storage ss{};
  if (ipv6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, address, 16);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, address, 4);
  }
  int error = 0;
  const MMDB_lookup_result_s res =
      MMDB_lookup_sockaddr(&mmdb_, reinterpret_cast<sockaddr*>(&ss), &error);
  if (error != MMDB_SUCCESS) return r;  // e.g. an IPv6 address in an IPv4-only database
  unsigned prefix = res.netmask;
  // IPv4 addresses live under ::/96 in an IPv6 tree; libmaxminddb reports the IPv6 prefix.
  if (!ipv6 && mmdb_.metadata.ip_version == 6) prefix = prefix >= 96 ? prefix - 96 : 0;
  r.prefix = static_cast<uint8_t>(prefix);
  if (!res.found_entry) return r;
  auto it = std::lower_bound(offsets_.begin(), offsets_.end(), res.entry.offset);
  if (it == offsets_.end() || *it != res.entry.offset) return r;
  r.found = true;
  r.location = &locations_[static_cast<size_t>(it - offsets_.begin())];
  return r;
}

std::string GeoDatabase::describe(const Location& l) const {
  std::string out = "continent " + (l.continent ? unpackCode(l.continent) : std::string("-")) +
                    ", country " + (l.country ? unpackCode(l.country) : std::string("-"));
  if (l.country == 0 && l.registered_country != 0)
    out += ", registered country " + unpackCode(l.registered_country);
  for (uint8_t i = 0; i < l.subdivision_count; ++i) {
    out += (i == 0 ? ", subdivision " : " > ") + unpackCode(l.country) + "-" +
           unpackSubdivision(l.subdivisions[i]);
  }
  if (l.has_coords)
    out += ", lat " + std::to_string(l.latitude) + " lon " + std::to_string(l.longitude);
  if (l.asn) out += ", AS" + std::to_string(l.asn);
  if (l.region_name != kNoName) out += ", meridian_region " + region_names_[l.region_name];
  return out;
}

}  // namespace meridian::georoute
