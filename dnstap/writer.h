// dnstap output: a Frame Streams writer (libfstrm) to a unix socket or a file, content type
// "protobuf:dnstap.Dnstap", fed by one Sink per query-path thread.
//
// The Writer is made by the server's control side at start-up (server::Server::start) with one
// Sink per QueryHandler, and destroyed after every worker has stopped (which flushes what is
// queued and closes the stream). fstrm's I/O thread does all the writing and, for a socket,
// reconnects to a collector that went away (every kReopenSeconds). Each Sink owns one of its
// single-producer input queues, so a worker submits without a lock; when the queue is full (the
// collector is slow or gone) fstrm_iothr_submit refuses the frame and the Sink drops it: the
// query path never waits. Encoding allocates the frame (fstrm frees it once written), so
// allocation happens only for the sampled queries of a server with dnstap on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "dnstap/message.h"

struct fstrm_iothr;
struct fstrm_iothr_queue;

namespace meridian::dnstap {

// [dnstap] (app/config_schema.cc). Off unless socket_path or file_path is set (not both).
struct Settings {
  std::string socket_path;    // a collector's unix socket (fstrm_capture -u, dnstap-collector)
  std::string file_path;      // or a Frame Streams file, truncated at start-up
  std::string identity;       // "" = the host name
  std::string version;        // "" = "meridian <version>"
  bool log_queries = true;    // AUTH_QUERY (CLIENT_QUERY for the resolver)
  bool log_responses = true;  // AUTH_RESPONSE (CLIENT_RESPONSE)
  unsigned sample_rate = 1;   // log one query in this many, counted per worker
  // Frames each worker may have waiting for the I/O thread (fstrm's input queue, a power of two
  // from 2 to 16384); beyond it they are dropped. 512 is fstrm's default.
  unsigned queue_size = 512;
  [[nodiscard]] bool enabled() const { return !socket_path.empty() || !file_path.empty(); }
};

class Writer;

// One query-path thread's handle on the output. Not thread-safe: one thread submits to it.
class Sink {
 public:
  // Sampling: true for one call in sample_rate (a counter, no random number).
  [[nodiscard]] bool sample() {
    if (++seen_ < rate_) return false;
    seen_ = 0;
    return true;
  }
  // Encodes and queues one message; false when it was dropped (the queue is full).
  bool submit(const Event& ev);
  [[nodiscard]] const Settings& settings() const { return *settings_; }
  // This thread's own address (the responder of AUTH_* messages), when it has a single one.
  void setLocal(const Endpoint& local) { local_ = local; }
  [[nodiscard]] const Endpoint& local() const { return local_; }

 private:
  friend class Writer;
  fstrm_iothr* iothr_ = nullptr;
  fstrm_iothr_queue* queue_ = nullptr;
  const Settings* settings_ = nullptr;
  unsigned rate_ = 1;
  unsigned seen_ = 0;
  Endpoint local_;
};

class Writer {
 public:
  // Opens the output and its I/O thread with `sinks` input queues. A file that cannot be created
  // is an error; an absent collector is not (fstrm keeps reconnecting).
  [[nodiscard]] static Result<std::unique_ptr<Writer>> open(const Settings& settings, size_t sinks);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  [[nodiscard]] Sink* sink(size_t i) { return i < sinks_.size() ? &sinks_[i] : nullptr; }
  [[nodiscard]] size_t sinks() const { return sinks_.size(); }

 private:
  Writer() = default;
  Settings settings_;  // identity and version resolved
  fstrm_iothr* iothr_ = nullptr;
  std::vector<Sink> sinks_;
};

// How often fstrm's I/O thread retries an absent collector (and a file it could not open).
inline constexpr unsigned kReopenSeconds = 2;

}  // namespace meridian::dnstap
