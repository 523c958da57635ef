// Test helper: a serving snapshot holding the given zones and default protocol settings.
#pragma once

#include <memory>
#include <vector>

#include "server/pipeline.h"

namespace meridian::test {

inline std::shared_ptr<const server::ServingState> servingState(
    std::vector<std::shared_ptr<const zones::Zone>> zones) {
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet(std::move(zones));
  return s;
}

}  // namespace meridian::test
