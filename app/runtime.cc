#include "app/runtime.h"
#include "api/pdns_json.h"
#include "app/api_pdns.h"
#include "app/api_service.h"
#include "app/control_socket.h"
#include "server/steering_zones.h"

#include <malloc.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "core/log.h"
#include "core/metrics.h"
#include "healthcheck/metrics.h"
#include "zones/content.h"
#include "zones/diff.h"
#include "zones/loader.h"
#include "zones/serial.h"

namespace meridian::app {
namespace {
// glibc's malloc tuning and trimming. Under AddressSanitizer glibc's allocator is not the one in
// use, and calling into it from threads that never allocated through it trips glibc's arena
// bookkeeping at thread exit (malloc assertion in __malloc_arena_thread_freeres): do nothing.
#if defined(__SANITIZE_ADDRESS__)
#define MERIDIAN_GLIBC_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MERIDIAN_GLIBC_MALLOC 0
#endif
#endif
#ifndef MERIDIAN_GLIBC_MALLOC
#define MERIDIAN_GLIBC_MALLOC 1
#endif
void trimMalloc() {
#if MERIDIAN_GLIBC_MALLOC
  ::malloc_trim(0);
#endif
}
void tuneMalloc() {
#if MERIDIAN_GLIBC_MALLOC
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 256 * 1024);
#endif
}
}  // namespace
}  // namespace meridian::app

namespace meridian::app {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using georoute::canonicalAddress;
using georoute::CheckConfig;
using georoute::CompiledSteering;
using georoute::compileSteering;
using georoute::HealthTarget;
using georoute::SteeringConfig;

Runtime::Runtime(CommandLine cmd, Config config)
    : cmd_(std::move(cmd)),
      config_(std::move(config)),
      state_(std::make_shared<const server::ServingState>()) {
  std::random_device rd;
  for (auto& b : cookie_secret_) b = static_cast<uint8_t>(rd());
}

Runtime::~Runtime() = default;

bool Runtime::geoChanged(const GeoSlot& slot, const std::string& path) {
  if (path.empty()) return slot.db != nullptr || !slot.path.empty();
  struct stat st {};
  const bool have = ::stat(path.c_str(), &st) == 0;
  return !(path == slot.path && have && st.st_mtime == slot.mtime && st.st_size == slot.size);
}

bool Runtime::loadDb(GeoSlot& slot, const std::string& path, const char* what) {
  if (path.empty()) {
    const bool changed = slot.db != nullptr;
    slot = GeoSlot{};
    return changed;
  }
  if (!geoChanged(slot, path)) return false;
  struct stat st {};
  const bool have = ::stat(path.c_str(), &st) == 0;
  auto db = georoute::GeoDatabase::open(path);
  // Remember the file's stamp either way, so a bad file is not re-read until it changes again.
  slot.path = path;
  slot.mtime = have ? st.st_mtime : 0;
  slot.size = have ? st.st_size : 0;
  if (!db) {
    if (slot.error != db.error().message) {
      log::error(std::string(what) + ": " + db.error().message +
                 (slot.db ? "; keeping the database loaded from " + slot.db->path()
                          : std::string("; steering runs without it")));
    }
    slot.error = db.error().message;
    return false;
  }
  slot.db = *db;
  slot.error.clear();
  log::info(std::string(what) + ": loaded " + path + " (" + slot.db->type() + ", " +
            std::to_string(slot.db->recordCount()) + " distinct records)");
  return true;
}

void Runtime::watchGeo() {
  // GeoIP files are replaced by updaters (geoipupdate) on their own schedule: look every 5 s. The
  // look is a stat(); opening and walking a changed file is a load of its own, on the pool.
  geo_timer_->expires_after(std::chrono::seconds(5));
  geo_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (!loads_.running() && (geoChanged(geo_, config_.steering.geoip) ||
                              geoChanged(asn_, config_.steering.asn_database))) {
      loads_.request();
    }
    watchGeo();
  });
}

namespace {

// What identifies a health slot across a reload: its label and, for a checked one, every setting
// of its check. A slot whose key is unchanged keeps its state; one whose label is kept keeps its
// override.
std::string targetKey(const HealthTarget& t) {
  if (!t.checked) return t.label + "|unchecked";
  const CheckConfig& c = t.check;
  std::string statuses;
  for (int code : c.expect_status) statuses += std::to_string(code) + ",";
  return t.label + "|" + c.type + "|" + std::to_string(c.port) + "|" + c.path + "|" + c.host + "|" +
         statuses + "|" + c.expect_body + "|" + c.dns_qname + "|" + std::to_string(c.dns_qtype) +
         "|" + std::to_string(c.interval_ms) + "|" + std::to_string(c.timeout_ms) + "|" +
         std::to_string(c.rise) + "|" + std::to_string(c.fall) + "|" +
         (c.verify_tls ? "verify" : "noverify");
}

}  // namespace

void Runtime::rebuildHealth() {
  std::string key;
  std::vector<std::string> keys;
  std::vector<healthcheck::Target> targets;
  size_t checked = 0;
  for (size_t i = 0; i < targets_.size(); ++i) {
    const HealthTarget& t = targets_[i];
    keys.push_back(targetKey(t));
    key += keys.back() + "\n";
    healthcheck::Target target;
    target.id = static_cast<uint32_t>(i);
    target.label = t.label;
    target.checked = t.checked;
    boost::system::error_code ec;
    if (!t.address.empty()) target.address = asio::ip::make_address(t.address, ec);
    if (t.checked) {
      target.spec = georoute::checkSpec(t.check);
      ++checked;
    }
    targets.push_back(std::move(target));
  }
  if (key == monitor_key_ && (monitor_ || targets.empty()) && verdicts_ &&
      verdicts_->size() == targets.size())
    return;
  // A rebuilt Monitor keeps what the old one knew: a slot with the same label and check keeps its
  // state (verdict, RTT, override), a slot with the same label keeps its operator override. So a
  // target that was down stays down until it passes `rise` probes of the new Monitor.
  std::map<std::string, healthcheck::TargetState> kept_state;
  std::map<std::string, healthcheck::Override> kept_override;
  if (monitor_) {
    const auto& states = monitor_->states();
    for (const auto& t : monitor_->targets()) {
      if (t.id >= states.size() || t.id >= monitor_keys_.size()) continue;
      const healthcheck::TargetState& st = states[t.id];
      kept_state[monitor_keys_[t.id]] = st;
      if (st.override != healthcheck::Override::kNone) kept_override[t.label] = st.override;
    }
  }
  monitor_.reset();
  monitor_key_ = key;
  monitor_keys_ = keys;
  // A new table for the new targets, published with the services compiled against them; the old
  // one stays with the old snapshot until the workers have moved past it.
  verdicts_ = std::make_shared<healthcheck::Verdicts>(targets.size());
  if (targets.empty()) return;
  healthcheck::MonitorOptions options;
  // Spread first probes over at most one second so many targets do not probe in lockstep.
  options.max_start_jitter_ms = 1000;
  try {
    monitor_ = std::make_unique<healthcheck::Monitor>(io_, std::move(targets), options, verdicts_);
  } catch (const std::exception& e) {
    log::error(std::string("health: ") + e.what() + "; health checks disabled");
    return;
  }
  for (const auto& t : monitor_->targets()) {
    if (auto it = kept_state.find(keys[t.id]); it != kept_state.end()) {
      (void)monitor_->adoptState(t.id, it->second);
    } else if (auto o = kept_override.find(t.label); o != kept_override.end()) {
      (void)monitor_->setOverride(t.id, o->second);
    }
  }
  // After the adoption above: verdict changes and overrides from here on reach the listeners.
  monitor_->setListener([this](const healthcheck::Event& e) {
    service_.publishHealthChange(e.id, e.verdict_changed, e.from_override);
  });
  health_started_ = false;
  health_checked_ = checked;
}

void Runtime::startHealth() {
  if (!monitor_ || health_started_) return;
  health_started_ = true;
  monitor_->start();
  log::info("health: checking " + std::to_string(health_checked_) + " target(s), " +
            std::to_string(targets_.size() - health_checked_) + " endpoint(s) without a check");
}

void Runtime::reclaimSnapshots() {
  // Old snapshots are freed here, on the control loop, once every worker (idle ones too, by their
  // quiescent timer) has moved past them; look again every 100 ms while any is waiting.
  const uint64_t freed_before = state_.domain().freed();
  const size_t waiting = state_.domain().reclaim();
  // A freed zone set leaves its pages in malloc's free lists (the heap only shrinks from its top):
  // hand them back, or the process keeps the peak of the largest zone it ever loaded.
  if (state_.domain().freed() != freed_before) trimMalloc();
  if (waiting == 0 || !reclaim_timer_) return;
  if (reclaim_armed_) return;
  reclaim_armed_ = true;
  reclaim_timer_->expires_after(std::chrono::milliseconds(100));
  reclaim_timer_->async_wait([this](boost::system::error_code ec) {
    reclaim_armed_ = false;
    if (!ec) reclaimSnapshots();
  });
}

namespace {
// A reloaded zone's serial tells secondaries whether to transfer it (RFC 1034 §4.3.5, RFC 1996):
// new content under the same serial never reaches them, and a serial that went backwards (RFC 1982)
// makes them ignore this version until the serial passes the old one again.
void warnSerial(const std::string& name, const zones::Zone& before, const zones::Zone& after) {
  const uint32_t was = before.serial();
  const uint32_t now = after.serial();
  switch (zones::compareSerials(now, was)) {
    case zones::SerialOrder::kEqual:
      if (after.digest() != before.digest()) {
        log::warning("zone " + name + ": content changed but serial " + std::to_string(now) +
                     " did not increase; secondaries will not pick it up");
      }
      break;
    case zones::SerialOrder::kLess:
      log::error("zone " + name + ": serial went backwards from " + std::to_string(was) + " to " +
                 std::to_string(now) +
                 " (RFC 1982); secondaries will ignore this version until the serial passes " +
                 std::to_string(was));
      break;
    case zones::SerialOrder::kUndefined:
      log::error("zone " + name + ": serial " + std::to_string(now) +
                 " is exactly 2^31 away from " + std::to_string(was) +
                 ", neither newer nor older (RFC 1982 \u00a73.2); secondaries may ignore it");
      break;
    case zones::SerialOrder::kGreater:
      break;
  }
}
}  // namespace

void Runtime::requestReload(std::function<void(const LoadReport&)> done) {
  ++reloads_;
  next_full_ = true;
  // sd_notify(3): RELOADING=1 now, READY=1 once the load that covers this request is published.
  notifier_.reloading();
  loads_.request([this, done = std::move(done)](const LoadReport& r) {
    notifier_.ready("serving; reloaded: " + r.text());
    if (done) done(r);
  });
}

void Runtime::requestStop() {
  load_stop_.store(true);
  io_.stop();
}

void Runtime::post(std::function<void()> task) {
  asio::post(io_, std::move(task));
}

namespace {
// What a zone job makes on the pool.
struct ParsedZone {
  zones::LoadedZone loaded;
  std::shared_ptr<const zones::ZoneContent> content;
  std::shared_ptr<const zones::ZoneDiff> diff;  // from the replaced content; null if none/same
  // Set when the zone's EditableZone could not journal the file's version (it is dropped).
  std::string journal_problem;
  // A zone with a journal, loaded for the first time: recovered from file and journal
  // (EditableZone::open), which the change path then goes on with.
  std::shared_ptr<zones::EditableZone> editable;
};

// The zone as EditableZone::open() recovers it from its file and journal (zones/README.md,
// "Recovery"): a kill between the journal's fsync and the file's rename left the file behind the
// journal (the journal's version is served and the file rewritten), a file broken while
// Meridian was stopped is served from its last good version, temporary files of a write cut
// short are removed. Only for a zone that has a journal (or such temporaries): a zone never
// changed keeps the plain load, and its journal is started by its first change.
Result<ParsedZone> recoverZone(const zones::EditableZoneConfig& config) {
  std::vector<std::string> warnings;
  auto opened = zones::EditableZone::open(config, std::time(nullptr), warnings);
  if (!opened) {
    std::string message = opened.error().message;
    for (const auto& w : warnings) message += "\n" + w;
    return Error{std::move(message)};
  }
  auto editable = std::make_shared<zones::EditableZone>(std::move(*opened));
  ParsedZone parsed{
      zones::LoadedZone{editable->zone(), std::move(warnings), editable->includes(), 0},
      std::make_shared<const zones::ZoneContent>(editable->content()),
      nullptr,
      {},
      editable};
  return parsed;
}

// Logs a zone's errors, one line each (a broken file may have many); returns how many.
size_t logZoneErrors(const std::string& zone, const std::string& message) {
  size_t errors = 0;
  for (size_t pos = 0; pos < message.size();) {
    size_t end = message.find('\n', pos);
    if (end == std::string::npos) end = message.size();
    log::error("zone " + zone + ": " + message.substr(pos, end - pos));
    ++errors;
    pos = end + 1;
  }
  return errors;
}
}  // namespace

void Runtime::beginLoad(uint64_t ticket) {
  auto run = std::make_unique<LoadRun>();
  run->ticket = ticket;
  run->startup = server_ == nullptr;
  // A GeoIP file that changed (watchGeo) reloads the databases alone; a reload (SIGHUP, control
  // socket) queued at the same time covers it.
  run->zones = run->startup || next_full_;
  next_full_ = false;
  run->geo = geo_;
  run->asn = asn_;
  if (run->startup) {
    run->config = config_;
  } else if (run->zones) {
    auto next = loadConfig(cmd_);
    if (!next) {
      log::error("reload: " + next.error().message + "; keeping the running configuration");
      zone_errors_["(config)"] = next.error().message;
      LoadReport r;
      r.failed = 1;
      // Answered from the loop, not from inside the request that started this load.
      asio::post(io_, [this, ticket, r] {
        if (loads_.current(ticket)) finishLoad(r);
      });
      run_ = std::move(run);
      return;
    }
    run->report.warnings = restartOnlyChanges(config_, *next);
    for (const auto& w : run->report.warnings) log::warning("reload: " + w);
    const server::RrlSettings& now = next->protocol.rrl;
    if (now.enabled && (!rrl_started_ || now.table_size != rrl_table_size_)) {
      log::warning(rrl_started_ ? "reload: rrl.table_size takes effect at the next restart"
                                : "reload: rrl was off at start-up; enabling it takes a restart");
    }
    next->server = config_.server;  // what runs until a restart (restartOnlyChanges)
    next->control_socket = config_.control_socket;
    next->state_dir = config_.state_dir;
    run->config = std::move(*next);
  } else {
    run->config = config_;
    run->errors = zone_errors_;
    run->next = zones_;
  }
  if (run->startup && !run->config.state_dir.empty()) {
    // The zones the API created, kept in the state directory.
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator(run->config.state_dir + "/zones", ec)) {
      const std::string file = entry.path().filename().string();
      if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".zone") != 0) continue;
      auto name = api::pdns::zoneNameFromId(file.substr(0, file.size() - 5));
      if (!name) continue;
      api_zones_.push_back({dns::toText(name->data), entry.path().string()});
    }
    std::sort(api_zones_.begin(), api_zones_.end(),
              [](const ZoneConfig& a, const ZoneConfig& b) { return a.name < b.name; });
  }
  addApiZones(run->config);
  if (run->zones && !run->config.state_dir.empty()) {
    // The services the API made, read with the configuration's; a store that does not load keeps
    // the ones loaded before (none at start-up) beside the configuration's.
    const std::string store = run->config.state_dir + "/services.toml";
    if (auto stored = readServiceStore(store); stored) {
      api_services_.clear();
      for (auto& svc : *stored) api_services_[svc.name] = std::move(svc);
      services_store_error_.clear();
    } else {
      services_store_error_ = stored.error().message;
      log::error("services: " + services_store_error_ + "; keeping the " +
                 std::to_string(api_services_.size()) +
                 " API service(s) loaded before (the configuration's are not affected)");
      run->errors["(services)"] = services_store_error_;
      ++run->report.failed;
    }
  }
  run->services = services_changed_;
  services_changed_ = false;
  for (const auto& origin : removed_zones_) {
    run->removed.insert(origin);
    run->next.erase(origin);
  }
  // Zones committed by the change path since the last load: published as committed (their files
  // hold the same records, written back), whatever this load does with the others.
  for (const auto& [origin, lz] : pending_zones_) {
    run->edited[origin] = lz.zone;
    if (!run->zones) run->next[origin] = lz;
  }
  for (auto& change : pending_changes_) run->changes.push_back(std::move(change));
  pending_changes_.clear();
  run_ = std::move(run);
  LoadRun& r = *run_;
  ++r.outstanding;
  pool_->post(
      [geo = r.geo, asn = r.asn, steering = r.config.steering]() mutable {
        bool changed = false;
        try {
          changed = loadDb(geo, steering.geoip, "geoip");
          changed = loadDb(asn, steering.asn_database, "geoip asn") || changed;
        } catch (const std::exception& e) {
          // Out of memory, say: what was loaded before keeps serving.
          log::error(std::string("geoip: ") + e.what());
        }
        return std::make_tuple(std::move(geo), std::move(asn), changed);
      },
      [this, ticket](std::tuple<GeoSlot, GeoSlot, bool> result) {
        if (!run_ || run_->ticket != ticket) return;
        LoadRun& r = *run_;
        r.geo = std::move(std::get<0>(result));
        r.asn = std::move(std::get<1>(result));
        if (!r.zones && !std::get<2>(result) && r.edited.empty() && r.removed.empty() &&
            !r.services) {
          // A GeoIP look that found nothing new to load: nothing to publish.
          geo_ = r.geo;
          asn_ = r.asn;
          finishLoad(r.report);
          return;
        }
        partDone(ticket);
      });
  if (!r.zones) return;
  // Each zone in its lane: a change being committed to it finishes first (and one sent during
  // the load waits for this look at the file), so a reload and a change never read or write the
  // zone's file and journal at the same time.
  for (const auto& zc : r.config.zones) {
    ++r.outstanding;
    enterLane(zc.name, [this, ticket, zc] { loadZoneStep(ticket, zc); });
  }
}

void Runtime::partDone(uint64_t ticket) {
  if (run_ && run_->ticket == ticket && --run_->outstanding == 0) compileLoad();
}

void Runtime::enterLane(const std::string& zone, std::function<void()> step) {
  ZoneLane& lane = lanes_[zone];
  if (lane.busy) {
    lane.waiting.push_back(std::move(step));
    return;
  }
  lane.busy = true;
  step();
}

void Runtime::leaveLane(const std::string& zone) {
  auto it = lanes_.find(zone);
  if (it == lanes_.end()) return;
  ZoneLane& lane = it->second;
  if (lane.waiting.empty()) {
    lane.busy = false;
    if (!lane.editable) lanes_.erase(it);
    return;
  }
  // Posted rather than called: a step that ends at once does not nest the next one in its frame.
  // The lane stays busy meanwhile, so nothing overtakes it.
  std::function<void()> next = std::move(lane.waiting.front());
  lane.waiting.pop_front();
  asio::post(io_, std::move(next));
}

void Runtime::loadZoneStep(uint64_t ticket, const ZoneConfig& zc) {
  if (!run_ || run_->ticket != ticket) return leaveLane(zc.name);
  LoadRun& r = *run_;
  struct stat st {};
  const bool have_stat = ::stat(zc.file.c_str(), &st) == 0;
  auto sameFile = [&](const LoadedZone& z) {
    return have_stat && z.file == zc.file && z.mtime == st.st_mtime &&
           z.mtime_nsec == st.st_mtim.tv_nsec && z.size == st.st_size && z.inode == st.st_ino &&
           std::all_of(z.includes.begin(), z.includes.end(),
                       [](const zones::SourceFile& f) { return f.unchanged(); });
  };
  // A change committed and not published yet, its file as written back: published as committed.
  // (A file edited by hand since is parsed below, on top of the change, and replaces it.)
  const auto pending = pending_zones_.find(zc.name);
  if (pending != pending_zones_.end() && sameFile(pending->second)) {
    r.next[zc.name] = pending->second;
    r.edited[zc.name] = pending->second.zone;
    ++r.report.unchanged;
    leaveLane(zc.name);
    return partDone(ticket);
  }
  auto old = zones_.find(zc.name);
  if (pending == pending_zones_.end() && old != zones_.end() && sameFile(old->second)) {
    r.next[zc.name] = old->second;
    ++r.report.unchanged;
    leaveLane(zc.name);
    return partDone(ticket);
  }
  // The file is read into its editable content and the serving zone in one pass, and the content
  // diffed against the version it replaces (a hand edit becomes a ZoneDiff), on the pool. A zone
  // edited through the service reads it through its EditableZone, whose journal takes the diff
  // and which records the file's new hash (so the next change is not refused as racing it).
  std::shared_ptr<const zones::ZoneContent> before;
  if (pending != pending_zones_.end()) {
    before = pending->second.content;
  } else if (old != zones_.end()) {
    before = old->second.content;
  }
  zones::EditableZone* ez = nullptr;
  if (auto lane = lanes_.find(zc.name); lane != lanes_.end()) ez = lane->second.editable.get();
  // Loaded for the first time with a journal, or with what a kill left of a write (the first
  // journal's, a created zone's): recovered. No change to it can be under way (the lane is held).
  std::optional<zones::EditableZoneConfig> recover;
  if (old == zones_.end() && pending == pending_zones_.end() && ez == nullptr) {
    recover = editableZoneConfig(zc, r.config.state_dir);
    if (recover->journal.empty()) recover->journal = zc.file + ".journal";
    if (::access(recover->journal.c_str(), F_OK) != 0 &&
        zones::staleTemporaries(recover->journal).empty() &&
        zones::staleTemporaries(zc.file).empty())
      recover.reset();
  }
  pool_->post(
      [zc, before = std::move(before), ez, recover, now = int64_t{std::time(nullptr)},
       hook = parse_hook_, stop = &load_stop_]() -> Result<ParsedZone> {
        log::info("zone " + zc.name + ": loading " + zc.file);
        if (hook) hook(zc.name);
        // A stop gives the parse up within a few thousand records (the pool's stop() waits for it).
        const zones::LoadStopScope stop_scope(*stop);
        try {
          if (recover) return recoverZone(*recover);
          std::string journal_problem;
          if (ez) {
            auto reloaded = ez->reload(now);
            if (reloaded) {
              ParsedZone parsed;
              parsed.loaded.zone = ez->zone();
              parsed.loaded.warnings = std::move(reloaded->warnings);
              parsed.loaded.includes = std::move(reloaded->includes);
              parsed.content = std::make_shared<const zones::ZoneContent>(ez->content());
              if (!reloaded->diff.empty())
                parsed.diff = std::make_shared<const zones::ZoneDiff>(std::move(reloaded->diff));
              return parsed;
            }
            if (reloaded.error().kind != zones::EditErrorKind::kStorage)
              return Error{reloaded.error().message};
            // The journal cannot take it: the file is served all the same, and the zone's
            // EditableZone is reopened from file and journal on its next change.
            journal_problem = reloaded.error().message;
          }
          auto loaded = zones::loadZoneContentFile(zc.name, zc.file);
          if (!loaded) return loaded.error();
          ParsedZone parsed{std::move(loaded->loaded),
                            std::make_shared<const zones::ZoneContent>(std::move(loaded->content)),
                            nullptr, std::move(journal_problem)};
          if (before) {
            auto d = std::make_shared<zones::ZoneDiff>(zones::diff(*before, *parsed.content));
            if (!d->empty()) parsed.diff = std::move(d);
          }
          // The loader's working copies (records, names) were freed on this thread: return
          // their pages here rather than on the control loop.
          trimMalloc();
          return parsed;
        } catch (const zones::LoadAbandoned& e) {
          // Logged here: the completion never runs in the stopped control loop.
          log::info("zone " + zc.name + ": load of " + zc.file +
                    " abandoned: the server is stopping");
          return Error{zc.file + ": " + e.what()};
        } catch (const std::exception& e) {
          return Error{zc.file + ": " + e.what()};
        }
      },
      [this, ticket, zc, st](Result<ParsedZone> loaded) {
        if (loaded && !loaded->journal_problem.empty()) {
          log::warning("zone " + zc.name + ": journal not updated (" + loaded->journal_problem +
                       "); it is reopened on the next change");
          if (auto lane = lanes_.find(zc.name); lane != lanes_.end()) lane->second.editable.reset();
        }
        // The version this load goes on with: the change not published yet, else the served one.
        std::optional<LoadedZone> kept;
        if (auto p = pending_zones_.find(zc.name); p != pending_zones_.end()) {
          kept = p->second;
          // The file's version (a hand edit on top of the change) replaces the change.
          if (loaded) pending_zones_.erase(p);
        } else if (auto o = zones_.find(zc.name); o != zones_.end()) {
          kept = o->second;
        }
        leaveLane(zc.name);
        if (!run_ || run_->ticket != ticket) return;
        LoadRun& r = *run_;
        if (!loaded) {
          ++r.report.failed;
          const std::string& message = loaded.error().message;
          r.errors[zc.name] = message;
          const size_t errors = logZoneErrors(zc.name, message);
          const std::string count = errors > 1 ? " (" + std::to_string(errors) + " errors)" : "";
          if (kept) {
            log::error("zone " + zc.name + ": not reloaded" + count + "; keeping serial " +
                       std::to_string(kept->zone->serial()));
            r.next[zc.name] = *kept;
          } else {
            log::error("zone " + zc.name + ": not loaded" + count + "; not served");
          }
        } else {
          const zones::LoadedZone& lzone = loaded->loaded;
          for (const auto& w : lzone.warnings) log::warning("zone " + zc.name + ": " + w);
          struct stat now = st;
          if (loaded->editable) {
            // The recovery may have rewritten the file: a reload compares with that one.
            if (::stat(zc.file.c_str(), &now) != 0) now = {};
            r.recovered[zc.name] = loaded->editable;
          }
          LoadedZone lz{lzone.zone,     loaded->content, std::time(nullptr), zc.file,
                        now.st_mtime,   now.st_size,     now.st_ino,         now.st_mtim.tv_nsec,
                        lzone.includes, ++edit_versions_};
          if (kept) warnSerial(zc.name, *kept->zone, *lz.zone);
          log::info("zone " + zc.name + " loaded from " + zc.file + ": serial " +
                    std::to_string(lz.zone->serial()) + ", " +
                    std::to_string(lz.zone->recordCount()) + " records");
          if (loaded->diff) r.changes.push_back({zc.name, zc.file, std::move(loaded->diff)});
          r.next[zc.name] = std::move(lz);
          ++r.report.loaded;
        }
        partDone(ticket);
      });
}

void Runtime::compileLoad() {
  LoadRun& r = *run_;
  std::vector<std::shared_ptr<const zones::Zone>> list;
  for (const auto& [name, lz] : r.next) list.push_back(lz.zone);
  std::vector<std::string> missing;
  for (const auto& zc : r.config.zones) {
    if (r.next.count(zc.name) == 0) missing.push_back(zc.name);
  }
  std::optional<SteeringConfig> steering;
  if (SteeringConfig all = withApiServices(r.config.steering, api_services_); !all.empty())
    steering = std::move(all);
  server::ProtocolSettings protocol = r.config.protocol;
  if (!r.config.cookie_secret_set) std::memcpy(protocol.cookie_secret, cookie_secret_, 16);
  // Null when off: the pipeline then refuses names not served here without looking at the client.
  if (r.config.recursion.enabled) {
    protocol.recursion = std::make_shared<const server::RecursionSettings>(r.config.recursion);
  }
  // The zone set and the steering (GeoIP walks for the ECS scope included) are built on the pool;
  // the control loop adds the health table and publishes.
  pool_->post(
      [list = std::move(list), missing = std::move(missing), steering = std::move(steering),
       protocol, geo = r.geo.db, asn = r.asn.db, previous = targets_]() mutable
      -> std::pair<std::shared_ptr<server::ServingState>, std::optional<Result<CompiledSteering>>> {
        try {
          auto state = std::make_shared<server::ServingState>();
          state->zones = zones::ZoneSet(std::move(list));
          for (const auto& name : missing) {
            dns::NameBuf apex;
            if (dns::fromText(name, apex)) {
              dns::lowercase(apex);
              state->unavailable_zones.emplace_back(reinterpret_cast<const char*>(apex.data),
                                                    apex.length);
            }
          }
          state->protocol = protocol;
          std::optional<Result<CompiledSteering>> compiled;
          if (steering) {
            try {
              compiled = compileSteering(*steering, server::zoneLocator(state->zones), geo, asn,
                                         &previous);
            } catch (const std::exception& e) {
              compiled = Result<CompiledSteering>(Error{e.what()});
            }
          }
          return {std::move(state), std::move(compiled)};
        } catch (const std::exception& e) {
          // No state: applyLoad keeps everything as it is.
          return {nullptr, Result<CompiledSteering>(Error{e.what()})};
        }
      },
      [this, ticket = r.ticket](
          std::pair<std::shared_ptr<server::ServingState>, std::optional<Result<CompiledSteering>>>
              result) {
        if (!run_ || run_->ticket != ticket || !loads_.current(ticket)) return;
        applyLoad(std::move(result.first), std::move(result.second));
      });
}

void Runtime::applyLoad(std::shared_ptr<server::ServingState> state,
                        std::optional<Result<CompiledSteering>> steering) {
  LoadRun& r = *run_;
  if (!state) {
    const std::string message = steering && !*steering ? steering->error().message : "";
    log::error("reload: " + message + "; nothing changed");
    zone_errors_["(load)"] = message;
    ++r.report.failed;
    if (r.startup) startup_failed_ = true;
    finishLoad(r.report);
    return;
  }
  if (r.zones) {
    // The [log] keys apply at once (log.level unless --log-level was given).
    applyLogging(cmd_, r.config);
    config_ = std::move(r.config);
    if (api_) api_->reconfigure(config_.api);
  }
  zones_ = std::move(r.next);
  zone_errors_ = std::move(r.errors);
  // The recovered zones' change path goes on from what was recovered (and is served now).
  for (auto& [origin, editable] : r.recovered) {
    if (auto z = zones_.find(origin); z != zones_.end() && z->second.zone == editable->zone())
      if (auto& lane = lanes_[origin]; !lane.editable)
        lane.editable = std::make_unique<zones::EditableZone>(std::move(*editable));
  }
  for (const auto& origin : r.removed) removed_zones_.erase(origin);
  // An edit committed while this load ran is published by the next one.
  for (const auto& [origin, zone] : r.edited) {
    if (auto p = pending_zones_.find(origin); p != pending_zones_.end() && p->second.zone == zone)
      pending_zones_.erase(p);
  }
  geo_ = std::move(r.geo);
  asn_ = std::move(r.asn);
  bool ok = true;
  if (steering) {
    if (*steering) {
      for (const auto& w : (*steering)->warnings) log::warning("steering: " + w);
      services_ = (*steering)->services;
      targets_ = (*steering)->targets;
      steering_error_.clear();
    } else {
      steering_error_ = steering->error().message;
      log::error("steering: " + steering_error_ +
                 (r.startup ? "" : "; keeping the previous steering"));
      ok = false;
    }
  } else {
    services_.reset();
    targets_.clear();
  }
  if (!ok) {
    ++r.report.failed;
    zone_errors_["(steering)"] = steering_error_;
  } else {
    zone_errors_.erase("(steering)");  // a GeoIP reload keeps the zones' errors, not a fixed one
  }
  if (r.startup && !ok) {
    startup_failed_ = true;
    finishLoad(r.report);
    return;
  }
  // The health table the services index goes into the same snapshot (rebuilt with the adopted
  // verdicts first when the targets changed), so no health id reaches a table of other targets.
  rebuildHealth();
  state->services = services_;
  if (services_) state->health = verdicts_;
  metric_names_.assign(*state);
  state_.publish(std::move(state));
  if (!r.startup) {
    startHealth();
    if (r.zones) log::info("reload: " + r.report.text());
  }
  // The changed zones are served now: tell the listeners (journal, audit, event stream).
  for (const auto& change : r.changes) {
    const zones::ZoneDiff& d = *change.diff;
    log::info("zone " + change.origin + ": serial " + std::to_string(d.old_serial) + " \u2192 " +
              std::to_string(d.new_serial) + ", " + std::to_string(d.removed.rrsetCount()) +
              " RRsets removed, " + std::to_string(d.added.rrsetCount()) + " added");
    service_.publishZoneChange(change);
  }
  reclaimSnapshots();
  finishLoad(r.report);
}

void Runtime::addApiZones(Config& config) const {
  for (const auto& z : api_zones_) {
    if (std::none_of(config.zones.begin(), config.zones.end(),
                     [&](const ZoneConfig& c) { return c.name == z.name; }))
      config.zones.push_back(z);
  }
}

SteeringConfig Runtime::withApiServices(const SteeringConfig& base,
                                        const std::map<std::string, StoredService>& api) {
  SteeringConfig out = base;
  for (const auto& [name, svc] : api) {
    const bool configured =
        std::any_of(base.services.begin(), base.services.end(),
                    [&](const auto& c) { return api::canonicalZone(c.name) == name; });
    if (configured) {
      log::warning("services: " + name +
                   " is defined in the configuration too; the configuration's entry is served");
      continue;
    }
    out.services.push_back(svc.config);
  }
  return out;
}

void Runtime::publishEdits(std::function<void(const LoadReport&)> done) {
  loads_.request(std::move(done));
}

void Runtime::finishLoad(LoadReport report) {
  // By value: the report is usually run_->report, which the reset below destroys.
  const uint64_t ticket = run_ ? run_->ticket : 0;
  if (api_ && run_ && run_->zones) {
    boost::json::array zones;
    for (const auto& [origin, z] : zones_) {
      if (z.zone)
        zones.push_back(boost::json::object{{"name", origin}, {"serial", z.zone->serial()}});
    }
    api_->events().publish("reload", boost::json::object{{"loaded", report.loaded},
                                                         {"unchanged", report.unchanged},
                                                         {"failed", report.failed},
                                                         {"zones", std::move(zones)}});
  }
  ++(report.failed > 0 ? loads_failed_ : loads_ok_);
  run_.reset();
  (void)loads_.finish(ticket, report);
}

std::string Runtime::metrics() const {
  std::vector<core::MetricFamily> families;
  metric_names_.addFamilies(server_ ? server_->totals() : server::CounterTotals{}, families);
  if (monitor_) healthcheck::addHealthFamilies(*monitor_, families);
  core::MetricFamily loads("meridian_reloads_total",
                           "Loads of configuration, zones and GeoIP finished (start-up, SIGHUP, "
                           "meridianctl reload, a changed GeoIP file), by outcome: failed when "
                           "anything in it failed (the previous version keeps serving)",
                           core::MetricType::kCounter);
  loads.add({{"outcome", "ok"}}, loads_ok_);
  loads.add({{"outcome", "failed"}}, loads_failed_);
  families.push_back(std::move(loads));
  core::MetricFamily serials("meridian_zone_serial", "SOA serial of each zone served",
                             core::MetricType::kGauge);
  for (const auto& [name, lz] : zones_)
    serials.add({{"zone", lz.zone->origin()}}, lz.zone->serial());
  families.push_back(std::move(serials));
  core::MetricFamily uptime("meridian_uptime_seconds", "Seconds since the server started",
                            core::MetricType::kGauge);
  uptime.add({}, static_cast<uint64_t>(std::time(nullptr) - started_));
  families.push_back(std::move(uptime));
  return core::renderPrometheus(families);
}

bool Runtime::startControlSocket() {
  if (config_.control_socket.empty()) return true;
  const std::string path = config_.control_socket;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    // Never remove what we did not make: a regular file (or anything else) at this path is the
    // operator's, whatever control.socket says.
    if (!S_ISSOCK(st.st_mode)) {
      log::error("control socket " + path +
                 " exists and is not a socket; refusing to replace it (remove it or set another "
                 "control.socket)");
      return false;
    }
    // A socket: live (another meridian answers on it) or left behind by a process that died. The
    // probe does not block: a live server with a full backlog is still a live server.
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
      log::error("control socket " + path + ": path too long");
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      log::error("control socket " + path + ": " + std::strerror(errno));
      return false;
    }
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(fd);
    if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
      log::error("control socket " + path +
                 " is in use by another process (is another meridian running?); not starting");
      return false;
    }
    if (err != ECONNREFUSED) {
      log::error("control socket " + path +
                 ": cannot tell whether it is in use: " + std::strerror(err));
      return false;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      log::error("control socket " + path +
                 ": cannot remove the stale socket: " + std::strerror(errno));
      return false;
    }
    log::info("control socket " + path + ": removed a stale socket left by a previous run");
  } else if (errno != ENOENT) {
    log::error("control socket " + path + ": " + std::strerror(errno));
    return false;
  }
  control_ = std::make_unique<stream_protocol::acceptor>(io_);
  boost::system::error_code ec;
  control_->open(stream_protocol(), ec);
  if (!ec) control_->bind(stream_protocol::endpoint(path), ec);
  if (!ec && ::stat(path.c_str(), &st) == 0) {
    control_path_ = path;
    control_dev_ = st.st_dev;
    control_ino_ = st.st_ino;
  }
  if (!ec) control_->listen(16, ec);
  if (ec) {
    log::error("control socket " + path + ": " + ec.message());
    control_.reset();
    removeControlSocket();
    return false;
  }
  ::chmod(path.c_str(), 0600);
  log::info("control socket on " + path);
  acceptControl();
  return true;
}

void Runtime::removeControlSocket() {
  if (control_path_.empty()) return;
  struct stat st {};
  if (::lstat(control_path_.c_str(), &st) == 0) {
    if (S_ISSOCK(st.st_mode) && st.st_dev == control_dev_ && st.st_ino == control_ino_) {
      ::unlink(control_path_.c_str());
    } else {
      log::warning("control socket " + control_path_ +
                   " was replaced by someone else; leaving it in place");
    }
  }
  control_path_.clear();
}

void Runtime::acceptControl() {
  control_->async_accept([this](boost::system::error_code aec, stream_protocol::socket sock) {
    if (aec) return;
    auto s = std::make_shared<stream_protocol::socket>(std::move(sock));
    auto buf = std::make_shared<asio::streambuf>(4096);
    auto send = [s](std::string reply) {
      auto out = std::make_shared<std::string>(std::move(reply));
      asio::async_write(*s, asio::buffer(*out), [s, out](boost::system::error_code, size_t) {});
    };
    asio::async_read_until(*s, *buf, '\n',
                           [this, buf, send](boost::system::error_code rec, size_t) {
                             if (rec) {
                               send("error: no command\n");
                               return;
                             }
                             std::istream in(buf.get());
                             std::string command;
                             std::getline(in, command);
                             runControlCommand(service_, command, send);
                           });
    acceptControl();
  });
}

int Runtime::run() {
  started_ = std::time(nullptr);
  // server.user: an unknown user or one this process cannot become stops start-up before any load.
  std::optional<RunAs> run_as;
  if (!config_.run_user.empty()) {
    auto who = resolveRunAs(config_.run_user, config_.run_group);
    if (!who) {
      log::error(who.error().message);
      return 1;
    }
    run_as = *who;
  }
  if (config_.zones.empty()) log::warning("no zones configured: every query will be REFUSED");
  // Zones are built on the pool's threads, so in glibc malloc arenas of their own, and
  // malloc_trim() returns only free chunks inside an arena's heap, never its top (only the main
  // arena's); with glibc's dynamic mmap threshold (raised to 32 MiB after the first big free, the
  // trim threshold with it) a replaced zone's arrays would stay in those heaps and RSS would keep
  // the largest zone ever loaded. A fixed threshold keeps blocks of 256 KiB and more in their own
  // mappings (given back when freed) and lets free() trim each heap's top.
  tuneMalloc();
  // Up to two threads for loads: several changed zones parse in parallel, and a second thread
  // does not take a core from the DNS workers for longer than a load lasts.
  pool_ = std::make_unique<core::WorkPool>(
      std::clamp(std::thread::hardware_concurrency(), 1u, 2u),
      [this](core::WorkPool::Task task) { asio::post(io_, std::move(task)); });
  // Signals from the start: a SIGTERM during the first load abandons it and exits cleanly.
  asio::signal_set signals(io_, SIGHUP, SIGTERM, SIGINT);
  bool serving = false;
  std::function<void()> wait = [&]() {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        if (serving) {
          log::info("SIGHUP: reloading");
          requestReload();
        }
        wait();
        return;
      }
      log::info(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining and exiting");
      load_stop_.store(true);
      io_.stop();
    });
  };
  wait();
  // Start-up waits for the first load (on the pool, zones in parallel) before binding.
  LoadReport report;
  {
    auto work = asio::make_work_guard(io_);
    bool loaded = false;
    loads_.request([&](const LoadReport& r) {
      report = r;
      loaded = true;
    });
    while (!loaded && io_.run_one() > 0) {
    }
    if (!loaded) {
      // Stopped (a signal, requestStop) before the first load was in: the load gives up.
      pool_->stop();
      run_.reset();
      loads_.abandon();
      log::info("stopped before serving");
      return 0;
    }
  }
  // The guard's release left the loop without work, which stops it: make it runnable again.
  io_.restart();
  if (startup_failed_) return 1;
  // Before health checks and the DNS sockets, so a second instance pointed at a live server's
  // socket stops here.
  if (!startControlSocket()) return 1;
  api_ = std::make_unique<ApiService>(io_, config_.api, service_);
  addPdnsRoutes(api_->routes(), service_);
  if (!api_->start()) {
    control_.reset();
    removeControlSocket();
    return 1;
  }
  startHealth();
  server_ = std::make_unique<server::Server>(state_, config_.server);
  // The workers' RRL tables are made now, from this configuration.
  rrl_started_ = config_.protocol.rrl.enabled;
  rrl_table_size_ = config_.protocol.rrl.table_size;
  if (auto r = server_->start(); !r) {
    log::error(r.error().message);
    control_.reset();
    removeControlSocket();
    return 1;
  }
  // Every socket is bound: become server.user (with no capabilities) before serving.
  bool switched = true;
  if (run_as && needsSwitch(*run_as)) {
    if (auto d = dropPrivileges(*run_as, config_.state_dir, control_path_); !d) {
      log::error(d.error().message);
      switched = false;
    } else {
      log::info("running as user " + run_as->user + " (uid " + std::to_string(run_as->uid) +
                ", gid " + std::to_string(run_as->gid) + "), no capabilities");
    }
  }
  std::string addrs;
  for (const auto& l : server_->listening()) addrs += (addrs.empty() ? "" : ", ") + l.text();
  if (switched) {
    log::info("ready: listening on " + addrs + " (UDP and TCP) with " +
              std::to_string(config_.server.threads) + " worker(s); " + report.text());
    notifier_.ready("serving on " + addrs + "; " + report.text());
    notifier_.startWatchdog(io_);
  }

  geo_timer_ = std::make_unique<asio::steady_timer>(io_);
  watchGeo();
  reclaim_timer_ = std::make_unique<asio::steady_timer>(io_);
  reclaimSnapshots();
  serving = true;
  if (switched) io_.run();
  notifier_.stopping();
  // A load still running gives up its parse (LoadStopScope) and the pool waits for it; its
  // completion stays unrun in the stopped loop, and what it carries is freed with it, here.
  load_stop_.store(true);
  pool_->stop();
  run_.reset();
  loads_.abandon();  // a client waiting for that reload sees its connection closed, no reply
  monitor_.reset();
  geo_timer_.reset();
  reclaim_timer_.reset();
  control_.reset();
  api_.reset();
  server_->stop();
  removeControlSocket();
  const auto t = server_->totals();
  log::info("stopped after " + std::to_string(t.queries) + " queries");
  return switched ? 0 : 1;
}

}  // namespace meridian::app
