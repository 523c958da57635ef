// The event stream behind `GET /api/v1/events` (Server-Sent Events, the WHATWG HTML "server-sent
// events" format): the control side publishes events (a numeric id, a type, JSON data) into a
// bounded ring; each subscriber is a Stream of the HTTP server. A client that reconnects with
// Last-Event-ID gets the events after that id replayed; when some of them have already left the
// ring (or the id is from an earlier run of the server), it first gets an event of type `reset`
// saying so, and should re-read the state it follows. A subscriber that does not read is dropped
// by its Stream (bounded buffer), so a slow client never grows memory without bound.
// Control loop only (publish, subscribe and the handler).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/router.h"

namespace meridian::api {

struct Event {
  uint64_t id = 0;  // from 1, in publication order
  std::string type;
  std::string data;  // JSON text, one line
};

class EventHub {
 public:
  // 1024 events: a few minutes of reloads and health flaps on a busy server, a few hundred KB.
  explicit EventHub(size_t capacity = 1024);

  // Appends an event (the oldest leaves a full ring) and sends it to every subscriber; returns
  // its id.
  uint64_t publish(std::string type, const boost::json::value& data);

  // Attaches a stream. With `last_id`, first replays the events after it (preceded by a `reset`
  // event when some are no longer in the ring).
  void subscribe(const std::shared_ptr<Stream>& stream, std::optional<uint64_t> last_id);

  // The GET handler: text/event-stream, resumable with the Last-Event-ID header.
  [[nodiscard]] Handler handler();

  [[nodiscard]] size_t subscribers();
  [[nodiscard]] uint64_t lastId() const { return next_id_ - 1; }

  // "id: 7\nevent: reload\ndata: {...}\n\n".
  [[nodiscard]] static std::string format(const Event& e);

 private:
  size_t capacity_;
  uint64_t next_id_ = 1;
  std::deque<Event> ring_;
  std::vector<std::weak_ptr<Stream>> subscribers_;
};

}  // namespace meridian::api
