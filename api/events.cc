// The SSE ring and its subscribers (events.h). Control loop only.
#include "api/events.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

namespace meridian::api {

EventHub::EventHub(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

std::string EventHub::format(const Event& e) {
  std::string out = "id: " + std::to_string(e.id) + "\nevent: " + e.type + "\ndata: " + e.data;
  out += "\n\n";
  return out;
}

uint64_t EventHub::publish(std::string type, const boost::json::value& data) {
  Event e{next_id_++, std::move(type), boost::json::serialize(data)};
  const std::string text = format(e);
  ring_.push_back(std::move(e));
  if (ring_.size() > capacity_) ring_.pop_front();
  std::erase_if(subscribers_, [&](const std::weak_ptr<Stream>& w) {
    auto s = w.lock();
    // send() false: the subscriber fell too far behind and was dropped.
    return s == nullptr || s->closed() || !s->send(text);
  });
  return ring_.back().id;
}

void EventHub::subscribe(const std::shared_ptr<Stream>& stream, std::optional<uint64_t> last_id) {
  if (last_id) {
    const uint64_t newest = next_id_ - 1;
    const uint64_t oldest = ring_.empty() ? next_id_ : ring_.front().id;
    // Lost: events after last_id left the ring, or the id is not one this run has given out
    // (the server restarted). The reset carries the id the stream resumes from.
    if (*last_id + 1 < oldest || *last_id > newest) {
      const uint64_t resume = *last_id > newest ? newest : oldest - 1;
      boost::json::object why{
          {"last_event_id", *last_id},
          {"oldest_kept", oldest},
          {"newest", newest},
          {"message", "events after last_event_id are no longer kept; re-read the state"}};
      if (!stream->send(format(Event{resume, "reset", boost::json::serialize(why)}))) return;
    }
    for (const Event& e : ring_) {
      if (e.id > *last_id && !stream->send(format(e))) return;
    }
  }
  subscribers_.push_back(stream);
}

size_t EventHub::subscribers() {
  std::erase_if(subscribers_, [](const std::weak_ptr<Stream>& w) {
    auto s = w.lock();
    return s == nullptr || s->closed();
  });
  return subscribers_.size();
}

Handler EventHub::handler() {
  return [this](Request& req) {
    std::optional<uint64_t> last;
    const std::string_view h = req.header("Last-Event-ID");
    uint64_t v = 0;
    if (!h.empty()) {
      const auto [p, ec] = std::from_chars(h.data(), h.data() + h.size(), v);
      // An id this server did not write (not a number) cannot be resumed from: a reset.
      last = ec == std::errc() && p == h.data() + h.size() ? v : UINT64_MAX;
    }
    Response r;
    r.content_type = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.stream = [this, last](std::shared_ptr<Stream> s) {
      // A first line at once, so a client knows the stream is open before the first event.
      if (s->send(": meridian events, last id " + std::to_string(lastId()) + "\n\n")) {
        subscribe(s, last);
      }
    };
    return r;
  };
}

}  // namespace meridian::api
