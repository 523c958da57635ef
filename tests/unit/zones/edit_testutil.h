// How Catch prints an EditResult (zones/edit.h) in a failed CHECK: "ok", or the field and message.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "zones/edit.h"

namespace Catch {
template <typename T>
struct StringMaker<boost::system::result<T, meridian::zones::EditError>> {
  static std::string convert(const boost::system::result<T, meridian::zones::EditError>& r) {
    return r.has_value() ? std::string("ok")
                         : "error: " + r.error().field + ": " + r.error().message;
  }
};
}  // namespace Catch
