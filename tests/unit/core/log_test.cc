// The log (core/log.h): the text and JSON line formats, syslog priority prefixes per level, JSON
// escaping of control characters and invalid UTF-8, the JOURNAL_STREAM check against a real fd,
// and write() through each target (stderr replaced by a temporary file, syslog(3) by a sink).
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"

using namespace meridian;
using log::Field;
using log::Format;
using log::Level;
using log::Style;
using log::Target;

namespace {

// 2026-12-02T01:42:03.045Z
std::chrono::system_clock::time_point fixedTime() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1796175723)) +
         std::chrono::milliseconds(45);
}

std::string json(std::string_view s) {
  std::string out;
  log::appendJsonString(out, s);
  return out;
}

// A temporary file standing in for stderr; removed with the object.
struct TempFile {
  std::string path;
  int fd = -1;
  TempFile() {
    char name[] = "/tmp/meridian-log-test-XXXXXX";
    fd = mkstemp(name);
    path = name;
  }
  ~TempFile() {
    if (fd >= 0) close(fd);
    unlink(path.c_str());
  }
  [[nodiscard]] std::string devIno(long ino_delta = 0, long dev_delta = 0) const {
    struct stat st {};
    REQUIRE(fstat(fd, &st) == 0);
    return std::to_string(static_cast<unsigned long long>(st.st_dev) + dev_delta) + ":" +
           std::to_string(static_cast<unsigned long long>(st.st_ino) + ino_delta);
  }
  // The one line written, or "" (a failed check) when there were more or none.
  [[nodiscard]] std::string onlyLine() const {
    const auto l = lines();
    CHECK(l.size() == 1);
    return l.size() == 1 ? l[0] : std::string();
  }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

std::vector<std::pair<int, std::string>> g_syslog;
void syslogSink(int priority, std::string_view message) {
  g_syslog.emplace_back(priority, std::string(message));
}

// Leaves the log as the process found it: level info, auto, text, real stderr and syslog.
struct RestoreLog {
  ~RestoreLog() {
    unsetenv("JOURNAL_STREAM");
    log::configure(Target::kAuto, Format::kText, LOG_DAEMON);
    log::setSinksForTest(-1, nullptr);
    log::setLevel(Level::kInfo);
  }
};

}  // namespace

TEST_CASE("log: text lines, with the timestamp or the journal's priority prefix", "[log]") {
  const auto t = fixedTime();
  CHECK(log::formatLine(Style{}, Level::kInfo, t, "ready: listening", {}) ==
        "2026-12-02T01:42:03Z meridian[info]: ready: listening\n");
  const Style journal{.priority_prefix = true, .timestamp = false, .tag = false};
  // sd-daemon(3): SD_DEBUG <7>, SD_INFO <6>, SD_WARNING <4>, SD_ERR <3>.
  CHECK(log::formatLine(journal, Level::kDebug, t, "m", {}) == "<7>debug: m\n");
  CHECK(log::formatLine(journal, Level::kInfo, t, "m", {}) == "<6>info: m\n");
  CHECK(log::formatLine(journal, Level::kWarning, t, "m", {}) == "<4>warning: m\n");
  CHECK(log::formatLine(journal, Level::kError, t, "m", {}) == "<3>error: m\n");
  // One event, one line: a newline or another control character in a message is escaped.
  CHECK(log::formatLine(journal, Level::kError, t, "a\nb\r\x01\tc", {}, false) ==
        "<3>error: a\\nb\\r\\x01\tc");
  const Field fields[] = {{"zone", "example.com."}, {"serial", "7"}};
  CHECK(log::formatLine(Style{}, Level::kWarning, t, "loaded", fields) ==
        "2026-12-02T01:42:03Z meridian[warning]: loaded zone=example.com. serial=7\n");
}

TEST_CASE("log: syslog priorities and facilities", "[log]") {
  CHECK(log::priority(Level::kDebug) == LOG_DEBUG);
  CHECK(log::priority(Level::kInfo) == LOG_INFO);
  CHECK(log::priority(Level::kWarning) == LOG_WARNING);
  CHECK(log::priority(Level::kError) == LOG_ERR);
  CHECK(log::facilityCode("daemon") == LOG_DAEMON);
  CHECK(log::facilityCode("local7") == LOG_LOCAL7);
  CHECK(log::facilityCode("authpriv") == LOG_AUTHPRIV);
  CHECK_FALSE(log::facilityCode("kern").has_value());
  CHECK_FALSE(log::facilityCode("Daemon").has_value());
  // Every listed choice is known.
  std::stringstream choices(log::facilityChoices());
  for (std::string name; std::getline(choices, name, '|');) {
    INFO(name);
    CHECK(log::facilityCode(name).has_value());
  }
}

TEST_CASE("log: JSON lines", "[log]") {
  const auto t = fixedTime();
  const Style style{.format = Format::kJson};
  const Field fields[] = {{"zone", "example.com."}, {"k\"ey", "v\\al"}};
  const std::string line = log::formatLine(style, Level::kError, t, "not \"loaded\"", fields);
  CHECK(line ==
        "{\"ts\":\"2026-12-02T01:42:03.045Z\",\"level\":\"error\",\"msg\":\"not \\\"loaded\\\"\","
        "\"zone\":\"example.com.\",\"k\\\"ey\":\"v\\\\al\"}\n");
  const auto v = boost::json::parse(line).as_object();
  CHECK(v.at("msg").as_string() == "not \"loaded\"");
  CHECK(v.at("k\"ey").as_string() == "v\\al");
  // Under the journal, the prefix comes first and the object follows whole.
  const Style journal{.format = Format::kJson, .priority_prefix = true, .timestamp = false};
  CHECK(log::formatLine(journal, Level::kWarning, t, "m", {}, false) ==
        "<4>{\"ts\":\"2026-12-02T01:42:03.045Z\",\"level\":\"warning\",\"msg\":\"m\"}");
}

TEST_CASE("log: JSON escaping of control characters", "[log]") {
  CHECK(json("a\"b\\c") == "a\\\"b\\\\c");
  CHECK(json("\n\r\t\b\f") == "\\n\\r\\t\\b\\f");
  CHECK(json(std::string_view("\x00\x01\x1f\x7f", 4)) == "\\u0000\\u0001\\u001f\\u007f");
  CHECK(json(" ~/") == " ~/");
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  const auto parsed = boost::json::parse("\"" + json(all) + "\"");
  CHECK(std::string(parsed.as_string()) == all);
  for (const char c : json(all)) CHECK(static_cast<unsigned char>(c) >= 0x20);
}

TEST_CASE("log: JSON keeps valid UTF-8 and replaces invalid bytes with U+FFFD", "[log]") {
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  // valid: 2, 3 and 4 octets, the edges U+0080, U+07FF, U+FFFF, U+10FFFF
  for (const char* ok : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc2\x80", "\xdf\xbf",
                         "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf"}) {
    INFO(ok);
    CHECK(json(ok) == ok);
  }
  // One U+FFFD per maximal invalid subpart (Unicode §3.9, "U+FFFD substitution of maximal
  // subparts").
  CHECK(json("a\x80"
             "b") == "a" + r + "b");                 // lone continuation byte
  CHECK(json("\xc0\x80") == r + r);                  // overlong NUL: C0 is never valid
  CHECK(json("\xe0\x80\x80") == r + r + r);          // overlong 3-octet form
  CHECK(json("\xed\xa0\x80") == r + r + r);          // UTF-16 surrogate U+D800
  CHECK(json("\xf4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
  CHECK(json("\xf5\x80") == r + r);                  // F5..FF never start a sequence
  CHECK(json("\xff") == r);
  CHECK(json("\xe2\x82"
             "A") == r + "A");          // truncated, then ASCII
  CHECK(json("x\xe2\x82") == "x" + r);  // truncated at the end
  CHECK(json("\xf0\x9f\x98") == r);     // 3 of 4 octets
  CHECK(json("\xc3\xa9\xc3") == "\xc3\xa9" + r);
  // Whatever comes in, the result is valid JSON that parses back.
  std::string bytes;
  for (int c = 0; c < 256; ++c) bytes += static_cast<char>(c);
  CHECK_NOTHROW(boost::json::parse("\"" + json(bytes) + "\""));
}

TEST_CASE("log: JOURNAL_STREAM names fd's device and inode", "[log]") {
  TempFile f;
  REQUIRE(f.fd >= 0);
  CHECK(log::isJournalStream(f.devIno().c_str(), f.fd));
  CHECK_FALSE(log::isJournalStream(f.devIno(1).c_str(), f.fd));     // another inode
  CHECK_FALSE(log::isJournalStream(f.devIno(0, 1).c_str(), f.fd));  // another device
  TempFile other;
  CHECK_FALSE(log::isJournalStream(f.devIno().c_str(), other.fd));
  for (const char* bad : {"", ":", "12", "12:", ":34", "1x:2", "1:2x", " 1:2", "-1:2"}) {
    INFO(bad);
    CHECK_FALSE(log::isJournalStream(bad, f.fd));
  }
  CHECK_FALSE(log::isJournalStream(nullptr, f.fd));
  CHECK_FALSE(log::isJournalStream(f.devIno().c_str(), -1));
}

TEST_CASE("log: write() through each target", "[log]") {
  RestoreLog restore;
  TempFile f;
  REQUIRE(f.fd >= 0);
  log::setSinksForTest(f.fd, syslogSink);
  log::setLevel(Level::kDebug);

  SECTION("auto, stderr is the journal: priority prefixes, no timestamp") {
    setenv("JOURNAL_STREAM", f.devIno().c_str(), 1);
    log::configure(Target::kAuto, Format::kText, LOG_DAEMON);
    log::info("ready");
    log::error("zone example.com.: not loaded");
    log::debug("probe");
    CHECK(f.lines() == std::vector<std::string>{"<6>info: ready",
                                                "<3>error: zone example.com.: not loaded",
                                                "<7>debug: probe"});
  }
  SECTION("auto, JOURNAL_STREAM names another file: plain lines") {
    setenv("JOURNAL_STREAM", f.devIno(1).c_str(), 1);
    log::configure(Target::kAuto, Format::kText, LOG_DAEMON);
    log::warning("w");
    CHECK_THAT(f.onlyLine(), Catch::Matches("20\\d\\d-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ "
                                            "meridian\\[warning\\]: w"));
  }
  SECTION("stderr: plain lines even under the journal") {
    setenv("JOURNAL_STREAM", f.devIno().c_str(), 1);
    log::configure(Target::kStderr, Format::kText, LOG_DAEMON);
    log::error("e");
    CHECK_THAT(f.onlyLine(), Catch::EndsWith("Z meridian[error]: e"));
  }
  SECTION("json: every line one object") {
    log::configure(Target::kStderr, Format::kJson, LOG_DAEMON);
    log::info("a\nb");
    log::write(Level::kWarning, "zone changed", {{"zone", "example.com."}, {"serial", "8"}});
    const auto lines = f.lines();
    REQUIRE(lines.size() == 2);
    const auto first = boost::json::parse(lines[0]).as_object();
    CHECK(first.at("level").as_string() == "info");
    CHECK(first.at("msg").as_string() == "a\nb");
    CHECK_THAT(std::string(first.at("ts").as_string()),
               Catch::Matches("20\\d\\d-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d\\d\\dZ"));
    const auto second = boost::json::parse(lines[1]).as_object();
    CHECK(second.at("serial").as_string() == "8");
    CHECK(second.at("zone").as_string() == "example.com.");
  }
  SECTION("syslog: facility | level priority, nothing on stderr") {
    g_syslog.clear();
    log::configure(Target::kSyslog, Format::kText, LOG_LOCAL3);
    log::debug("d");
    log::info("i");
    log::warning("w");
    log::error("e");
    CHECK(g_syslog ==
          std::vector<std::pair<int, std::string>>{{LOG_LOCAL3 | LOG_DEBUG, "debug: d"},
                                                   {LOG_LOCAL3 | LOG_INFO, "info: i"},
                                                   {LOG_LOCAL3 | LOG_WARNING, "warning: w"},
                                                   {LOG_LOCAL3 | LOG_ERR, "error: e"}});
    g_syslog.clear();
    log::configure(Target::kSyslog, Format::kJson, LOG_DAEMON);
    log::error("e");
    REQUIRE(g_syslog.size() == 1);
    CHECK(g_syslog[0].first == (LOG_DAEMON | LOG_ERR));
    CHECK(boost::json::parse(g_syslog[0].second).as_object().at("msg").as_string() == "e");
    CHECK(f.lines().empty());
  }
  SECTION("the level filters every target") {
    log::configure(Target::kStderr, Format::kText, LOG_DAEMON);
    log::setLevel(Level::kWarning);
    log::info("dropped");
    log::warning("kept");
    CHECK_THAT(f.onlyLine(), Catch::EndsWith("kept"));
  }
  SECTION("threads: every line whole") {
    log::configure(Target::kStderr, Format::kText, LOG_DAEMON);
    const std::string body(3000, 'x');  // more than PIPE_BUF (4096 bytes) in total per batch
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&body, t] {
        for (int i = 0; i < 100; ++i) log::info(std::to_string(t) + body);
      });
    }
    for (auto& th : threads) th.join();
    const auto lines = f.lines();
    REQUIRE(lines.size() == 400);
    int whole = 0;
    for (const auto& l : lines) {
      const size_t at = l.find("meridian[info]: ");
      whole += at != std::string::npos && l.size() == at + 16 + 1 + body.size() &&
               l.compare(at + 17, body.size(), body) == 0;
    }
    CHECK(whole == 400);
  }
}
