// Published<> and QuiescentDomain (core/snapshot.h): an old snapshot is freed by reclaim() on the
// writer's thread only after every registered reader passed a quiescent point, never before and
// never on the reader.
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "core/snapshot.h"

using namespace meridian;

namespace {

struct Tracked {
  int value;
  std::atomic<int>* live;
  std::thread::id* freed_on;
};

std::shared_ptr<const Tracked> make(int v, std::atomic<int>& live, std::thread::id& freed_on) {
  live.fetch_add(1);
  return std::shared_ptr<const Tracked>(new Tracked{v, &live, &freed_on}, [](const Tracked* t) {
    *t->freed_on = std::this_thread::get_id();
    t->live->fetch_sub(1);
    delete t;
  });
}

}  // namespace

TEST_CASE("a retired snapshot waits for every registered reader's quiescent point", "[snapshot]") {
  QuiescentDomain domain;
  std::atomic<int> live{0};
  std::thread::id freed_on;
  Published<Tracked> pub(make(1, live, freed_on), domain);
  QuiescentDomain::Slot* a = domain.enter();
  QuiescentDomain::Slot* b = domain.enter();
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  Published<Tracked>::Reader reader(pub);
  const Tracked& held = reader.get();  // reader a is "inside a query" with snapshot 1
  CHECK(held.value == 1);

  pub.publish(make(2, live, freed_on));
  CHECK(reader.get().value == 2);  // new readers see the new snapshot at once
  CHECK(live.load() == 2);         // ... while the old one stays for whoever may hold it
  CHECK(domain.pending() == 1);
  CHECK(held.value == 1);

  domain.quiescent(*a);
  CHECK(domain.reclaim() == 1);  // b (an idle reader) has not passed a quiescent point yet
  CHECK(live.load() == 2);
  domain.quiescent(*b);
  CHECK(domain.reclaim() == 0);
  CHECK(live.load() == 1);
  CHECK(freed_on == std::this_thread::get_id());
  CHECK(domain.freed() == 1);

  // A reader that leaves is no longer waited for.
  pub.publish(make(3, live, freed_on));
  domain.quiescent(*a);
  domain.leave(b);
  CHECK(domain.reclaim() == 0);
  CHECK(live.load() == 1);

  // A quiescent point from before the publish does not count.
  domain.quiescent(*a);
  pub.publish(make(4, live, freed_on));
  CHECK(domain.reclaim() == 1);
  CHECK(live.load() == 2);
  domain.quiescent(*a);
  CHECK(domain.reclaim() == 0);
  CHECK(live.load() == 1);
  domain.leave(a);
}

TEST_CASE("with no registered reader publish() frees the old snapshot at once", "[snapshot]") {
  QuiescentDomain domain;
  std::atomic<int> live{0};
  std::thread::id freed_on;
  {
    Published<Tracked> pub(make(1, live, freed_on), domain);
    pub.publish(make(2, live, freed_on));
    CHECK(live.load() == 1);
    CHECK(domain.pending() == 0);
  }
  CHECK(live.load() == 0);  // the last one goes with the Published
}

TEST_CASE("a reader thread that frees nothing: the writer frees after its quiescent point",
          "[snapshot]") {
  QuiescentDomain domain;
  std::atomic<int> live{0};
  std::thread::id freed_on;
  Published<Tracked> pub(make(0, live, freed_on), domain);
  std::atomic<bool> stop{false}, ready{false};
  std::atomic<long> sum{0};
  std::thread::id reader_id;
  std::thread reader([&] {
    reader_id = std::this_thread::get_id();
    QuiescentDomain::Slot* slot = domain.enter();
    Published<Tracked>::Reader r(pub);
    ready = true;
    while (!stop.load()) {
      domain.quiescent(*slot);
      for (int i = 0; i < 64; ++i) sum.fetch_add(r.get().value, std::memory_order_relaxed);
    }
    domain.leave(slot);
  });
  while (!ready.load()) std::this_thread::yield();
  for (int v = 1; v <= 200; ++v) {
    pub.publish(make(v, live, freed_on));
    // Generous bound; normally a few microseconds.
    for (int spin = 0; spin < 1000000 && domain.reclaim() != 0; ++spin) std::this_thread::yield();
    REQUIRE(live.load() == 1);
    REQUIRE(freed_on == std::this_thread::get_id());
  }
  stop = true;
  reader.join();
  CHECK(freed_on != reader_id);
  CHECK(sum.load() > 0);
}
