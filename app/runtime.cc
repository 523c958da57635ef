#include "app/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <sstream>

#include "core/log.h"
#include "zones/loader.h"

namespace meridian::app {

namespace asio = boost::asio;
using asio::local::stream_protocol;

std::string LoadReport::text() const {
  return std::to_string(loaded) + " zone(s) loaded, " + std::to_string(unchanged) + " unchanged, " +
         std::to_string(failed) + " failed";
}

Runtime::Runtime(CommandLine cmd, Config config)
    : cmd_(std::move(cmd)),
      config_(std::move(config)),
      state_(std::make_shared<const server::ServingState>()),
      health_(std::make_shared<const healthcheck::StateTable>()) {}

bool Runtime::loadGeo(const Config& config) {
  const std::string& path = config.steering.geoip;
  if (path.empty()) {
    const bool changed = geo_ != nullptr;
    geo_.reset();
    geo_path_.clear();
    geo_error_.clear();
    return changed;
  }
  struct stat st {};
  const bool have = ::stat(path.c_str(), &st) == 0;
  if (geo_ && path == geo_path_ && have && st.st_mtime == geo_mtime_ && st.st_size == geo_size_) return false;
  auto db = georoute::GeoDatabase::open(path);
  if (!db) {
    if (geo_error_ != db.error().message) {
      log::error("geoip: " + db.error().message +
                 (geo_ ? "; keeping " + geo_->path() : std::string("; steering runs without locations")));
    }
    geo_error_ = db.error().message;
    // Remember the bad file's stamp so it is not re-read until it changes again.
    geo_mtime_ = have ? st.st_mtime : 0;
    geo_size_ = have ? st.st_size : 0;
    geo_path_ = path;
    return false;
  }
  geo_ = *db;
  geo_path_ = path;
  geo_mtime_ = st.st_mtime;
  geo_size_ = st.st_size;
  geo_error_.clear();
  log::info("geoip: loaded " + path + " (" + geo_->type() + ", " + std::to_string(geo_->recordCount()) +
            " distinct records)");
  return true;
}

void Runtime::watchGeo() {
  // GeoIP files are replaced by updaters (geoipupdate) on their own schedule: look every 5 s.
  geo_timer_->expires_after(std::chrono::seconds(5));
  geo_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    if (!config_.steering.geoip.empty() && loadGeo(config_)) publish();
    watchGeo();
  });
}

LoadReport Runtime::loadZones(const Config& config) {
  LoadReport report;
  std::map<std::string, LoadedZone> next;
  zone_errors_.clear();
  for (const auto& zc : config.zones) {
    struct stat st {};
    const bool have_stat = ::stat(zc.file.c_str(), &st) == 0;
    auto old = zones_.find(zc.name);
    if (have_stat && old != zones_.end() && old->second.file == zc.file &&
        old->second.mtime == st.st_mtime && old->second.size == st.st_size &&
        old->second.inode == st.st_ino) {
      next[zc.name] = old->second;
      ++report.unchanged;
      continue;
    }
    auto loaded = zones::loadZoneFile(zc.name, zc.file);
    if (!loaded) {
      ++report.failed;
      zone_errors_[zc.name] = loaded.error().message;
      if (old != zones_.end()) {
        log::error("zone " + zc.name + ": " + loaded.error().message +
                   "; keeping serial " + std::to_string(old->second.zone->serial()));
        next[zc.name] = old->second;
      } else {
        log::error("zone " + zc.name + ": " + loaded.error().message + "; not served");
      }
      continue;
    }
    for (const auto& w : loaded->warnings) log::warning("zone " + zc.name + ": " + w);
    LoadedZone lz{loaded->zone, zc.file, st.st_mtime, st.st_size, st.st_ino};
    log::info("zone " + zc.name + " loaded from " + zc.file + ": serial " +
              std::to_string(lz.zone->serial()) + ", " + std::to_string(lz.zone->recordCount()) +
              " records");
    next[zc.name] = std::move(lz);
    ++report.loaded;
  }
  zones_ = std::move(next);
  return report;
}

bool Runtime::publish(bool startup) {
  std::vector<std::shared_ptr<const zones::Zone>> list;
  for (const auto& [name, lz] : zones_) list.push_back(lz.zone);
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet(std::move(list));
  state->protocol = config_.protocol;
  bool ok = true;
  if (!config_.steering.empty()) {
    auto compiled = compileSteering(config_.steering, state->zones, geo_);
    if (compiled) {
      services_ = compiled->services;
      targets_ = compiled->targets;
      steering_error_.clear();
    } else {
      steering_error_ = compiled.error().message;
      log::error("steering: " + steering_error_ + (startup ? "" : "; keeping the previous steering"));
      ok = false;
    }
  } else {
    services_.reset();
    targets_.clear();
  }
  if (startup && !ok) return false;
  state->services = services_;
  state_.publish(std::move(state));
  return ok;
}

LoadReport Runtime::reload() {
  ++reloads_;
  auto next = loadConfig(cmd_);
  if (!next) {
    log::error("reload: " + next.error().message + "; keeping the running configuration");
    LoadReport r;
    r.failed = 1;
    zone_errors_["(config)"] = next.error().message;
    return r;
  }
  if (next->server.listen.size() != config_.server.listen.size() ||
      next->server.threads != config_.server.threads) {
    log::warning("reload: listen addresses and threads take effect at the next restart");
  }
  next->server = config_.server;
  config_ = std::move(*next);
  LoadReport report = loadZones(config_);
  (void)loadGeo(config_);
  if (!publish()) {
    ++report.failed;
    zone_errors_["(steering)"] = steering_error_;
  }
  log::info("reload: " + report.text());
  return report;
}

std::string Runtime::status() const {
  std::ostringstream out;
  const auto totals = server_ ? server_->totals() : server::CounterTotals{};
  out << "uptime " << (std::time(nullptr) - started_) << "s, workers " << config_.server.threads
      << ", reloads " << reloads_ << "\n";
  out << "queries " << totals.queries << ", dropped " << totals.dropped << ", truncated "
      << totals.truncated << ", tcp connections " << totals.tcp_connections << "\n";
  out << "rcodes: NOERROR " << totals.rcodes[0] << ", FORMERR " << totals.rcodes[1] << ", SERVFAIL "
      << totals.rcodes[2] << ", NXDOMAIN " << totals.rcodes[3] << ", NOTIMP " << totals.rcodes[4]
      << ", REFUSED " << totals.rcodes[5] << ", NOTAUTH " << totals.rcodes[9] << ", BADVERS "
      << totals.rcodes[16] << "\n";
  for (const auto& [name, lz] : zones_) {
    out << "zone " << name << " serial " << lz.zone->serial() << " records "
        << lz.zone->recordCount() << " file " << lz.file << "\n";
  }
  for (const auto& [name, err] : zone_errors_) out << "error " << name << ": " << err << "\n";
  if (geo_) out << "geoip " << geo_->path() << " (" << geo_->type() << ")\n";
  if (!geo_error_.empty()) out << "error geoip: " << geo_error_ << "\n";
  if (services_) out << "services " << services_->services.size() << ", health targets " << targets_.size() << "\n";
  if (!steering_error_.empty()) out << "error steering: " << steering_error_ << "\n";
  return out.str();
}

void Runtime::startControlSocket() {
  if (config_.control_socket.empty()) return;
  const std::string path = config_.control_socket;
  // A socket file left by a crashed process is removed; a live server's is not.
  {
    asio::io_context probe;
    stream_protocol::socket s(probe);
    boost::system::error_code ec;
    s.connect(stream_protocol::endpoint(path), ec);
    if (!ec) {
      log::error("control socket " + path + " is in use by another process; control disabled");
      return;
    }
    ::unlink(path.c_str());
  }
  auto acceptor = std::make_shared<stream_protocol::acceptor>(io_);
  boost::system::error_code ec;
  acceptor->open(stream_protocol(), ec);
  if (!ec) acceptor->bind(stream_protocol::endpoint(path), ec);
  if (!ec) acceptor->listen(16, ec);
  if (ec) {
    log::error("control socket " + path + ": " + ec.message() + "; control disabled");
    return;
  }
  ::chmod(path.c_str(), 0600);
  log::info("control socket on " + path);
  auto accept = std::make_shared<std::function<void()>>();
  *accept = [this, acceptor, accept]() {
    acceptor->async_accept([this, acceptor, accept](boost::system::error_code aec,
                                                     stream_protocol::socket sock) {
      if (aec) return;
      auto s = std::make_shared<stream_protocol::socket>(std::move(sock));
      auto buf = std::make_shared<asio::streambuf>(4096);
      asio::async_read_until(*s, *buf, '\n', [this, s, buf](boost::system::error_code rec, size_t) {
        std::string reply;
        if (rec) {
          reply = "error: no command\n";
        } else {
          std::istream in(buf.get());
          std::string command;
          std::getline(in, command);
          if (command == "reload") {
            const LoadReport r = reload();
            reply = (r.failed == 0 ? "ok " : "error ") + r.text() + "\n";
            for (const auto& [name, err] : zone_errors_) reply += "  " + name + ": " + err + "\n";
          } else if (command == "status") {
            reply = "ok\n" + status();
          } else if (command == "stop") {
            reply = "ok stopping\n";
            std::raise(SIGTERM);
          } else {
            reply = "error: unknown command '" + command + "' (try reload, status, stop)\n";
          }
        }
        auto out = std::make_shared<std::string>(std::move(reply));
        asio::async_write(*s, asio::buffer(*out), [s, out](boost::system::error_code, size_t) {});
      });
      (*accept)();
    });
  };
  (*accept)();
}

int Runtime::run() {
  started_ = std::time(nullptr);
  const LoadReport report = loadZones(config_);
  if (config_.zones.empty()) log::warning("no zones configured: every query will be REFUSED");
  (void)loadGeo(config_);
  if (!publish(true)) return 1;
  server_ = std::make_unique<server::Server>(state_, config_.server, &health_);
  if (auto r = server_->start(); !r) {
    log::error(r.error().message);
    return 1;
  }
  std::string addrs;
  for (const auto& l : config_.server.listen) addrs += (addrs.empty() ? "" : ", ") + l.text();
  log::info("ready: listening on " + addrs + " (UDP and TCP) with " +
            std::to_string(config_.server.threads) + " worker(s); " + report.text());

  asio::signal_set signals(io_, SIGHUP, SIGTERM, SIGINT);
  std::function<void()> wait = [&]() {
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        log::info("SIGHUP: reloading");
        reload();
        wait();
        return;
      }
      log::info(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining and exiting");
      io_.stop();
    });
  };
  wait();
  startControlSocket();
  geo_timer_ = std::make_unique<asio::steady_timer>(io_);
  watchGeo();
  io_.run();
  server_->stop();
  if (!config_.control_socket.empty()) ::unlink(config_.control_socket.c_str());
  const auto t = server_->totals();
  log::info("stopped after " + std::to_string(t.queries) + " queries");
  return 0;
}

}  // namespace meridian::app
