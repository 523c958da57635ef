// Result types shared by every module. The data plane returns these instead of throwing.
#pragma once

#include <boost/system/result.hpp>
#include <stdexcept>
#include <string>

namespace meridian {

// An error carried across the control plane: a message a human can act on.
struct Error {
  std::string message;
};

// Found by argument-dependent lookup when result<T, Error>::value() is called on an error: control
// code may use value() and let the exception reach its request boundary.
[[noreturn]] inline void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

template <typename T>
using Result = boost::system::result<T, Error>;

}  // namespace meridian
