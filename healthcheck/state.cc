#include "healthcheck/state.h"

namespace meridian::healthcheck {

const char* overrideName(Override o) {
  switch (o) {
    case Override::kNone:
      return "none";
    case Override::kForceUp:
      return "force-up";
    case Override::kForceDown:
      return "force-down";
    case Override::kDrain:
      return "drain";
  }
  return "?";
}

}  // namespace meridian::healthcheck
