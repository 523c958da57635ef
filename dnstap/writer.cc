// The dnstap Writer over libfstrm (writer.h): unix-socket or file writer, the I/O thread with one
// SPSC input queue per Sink, and submission that drops rather than waits.
#include "dnstap/writer.h"

#include <fcntl.h>
#include <fstrm.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#ifndef MERIDIAN_VERSION
#define MERIDIAN_VERSION "unknown"
#endif

namespace meridian::dnstap {

namespace {

constexpr char kContentType[] = "protobuf:dnstap.Dnstap";

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "meridian";
  return buf;
}

// A Frame Streams writer for the settings; null on failure.
fstrm_writer* makeWriter(const Settings& s) {
  fstrm_writer_options* wopt = fstrm_writer_options_init();
  fstrm_writer_options_add_content_type(wopt, kContentType, sizeof kContentType - 1);
  fstrm_writer* w = nullptr;
  if (!s.socket_path.empty()) {
    fstrm_unix_writer_options* uopt = fstrm_unix_writer_options_init();
    fstrm_unix_writer_options_set_socket_path(uopt, s.socket_path.c_str());
    w = fstrm_unix_writer_init(uopt, wopt);
    fstrm_unix_writer_options_destroy(&uopt);
  } else {
    fstrm_file_options* fopt = fstrm_file_options_init();
    fstrm_file_options_set_file_path(fopt, s.file_path.c_str());
    w = fstrm_file_writer_init(fopt, wopt);
    fstrm_file_options_destroy(&fopt);
  }
  fstrm_writer_options_destroy(&wopt);
  return w;
}

}  // namespace

bool Sink::submit(const Event& ev) {
  const size_t len = encodedSize(ev, settings_->identity, settings_->version);
  auto* buf = static_cast<uint8_t*>(std::malloc(len));
  if (buf == nullptr) return false;
  encode(ev, settings_->identity, settings_->version, buf, len);
  // fstrm_res_again: the queue is full. The frame stays ours and is dropped (never waited for).
  if (fstrm_iothr_submit(iothr_, queue_, buf, len, fstrm_free_wrapper, nullptr) !=
      fstrm_res_success) {
    std::free(buf);
    return false;
  }
  return true;
}

Result<std::unique_ptr<Writer>> Writer::open(const Settings& settings, size_t sinks) {
  if (!settings.socket_path.empty() && !settings.file_path.empty()) {
    return Error{"dnstap: set dnstap.socket or dnstap.file, not both"};
  }
  if (!settings.file_path.empty()) {
    // fstrm's file writer would only retry in its I/O thread; a path that cannot be written is a
    // start-up error with the reason.
    const int fd = ::open(settings.file_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
      return Error{"dnstap: cannot open " + settings.file_path + ": " + std::strerror(errno)};
    }
    ::close(fd);
  }
  std::unique_ptr<Writer> w(new Writer());
  w->settings_ = settings;
  if (w->settings_.identity.empty()) w->settings_.identity = hostName();
  if (w->settings_.version.empty()) w->settings_.version = "meridian " MERIDIAN_VERSION;
  sinks = std::max<size_t>(1, sinks);

  fstrm_writer* fw = makeWriter(w->settings_);
  if (fw == nullptr) return Error{"dnstap: cannot set up the Frame Streams writer"};
  fstrm_iothr_options* opt = fstrm_iothr_options_init();
  fstrm_iothr_options_set_num_input_queues(opt, static_cast<unsigned>(sinks));
  fstrm_iothr_options_set_queue_model(opt, FSTRM_IOTHR_QUEUE_MODEL_SPSC);
  fstrm_iothr_options_set_reopen_interval(opt, kReopenSeconds);
  const bool size_ok =
      fstrm_iothr_options_set_input_queue_size(opt, settings.queue_size) == fstrm_res_success;
  w->iothr_ = size_ok ? fstrm_iothr_init(opt, &fw) : nullptr;
  fstrm_iothr_options_destroy(&opt);
  if (w->iothr_ == nullptr) {
    if (fw != nullptr) fstrm_writer_destroy(&fw);
    return Error{size_ok ? "dnstap: cannot start the Frame Streams I/O thread"
                         : "dnstap: queue_size must be a power of two from 2 to 16384"};
  }
  w->sinks_.resize(sinks);
  for (size_t i = 0; i < sinks; ++i) {
    Sink& s = w->sinks_[i];
    s.iothr_ = w->iothr_;
    s.queue_ = fstrm_iothr_get_input_queue_idx(w->iothr_, i);
    s.settings_ = &w->settings_;
    s.rate_ = std::max(1u, settings.sample_rate);
  }
  return w;
}

Writer::~Writer() {
  // Flushes the queued frames, writes the stop frame and closes the stream.
  if (iothr_ != nullptr) fstrm_iothr_destroy(&iothr_);
}

}  // namespace meridian::dnstap
