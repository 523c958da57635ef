// The RFC 7871 EDNS Client Subnet payload checks, shared by the query parser (message.cc) and the
// response parser (response.cc). Its own header so that the widely included message.h stays as it
// is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dns/message.h"

namespace meridian::dns {

// RFC 7871 §6 checks of an ECS option's payload (FAMILY, prefixes, ADDRESS length, zero padding
// bits); in a query SCOPE PREFIX-LENGTH must be 0, in a response it is at most the family's bits.
// False means FORMERR (queries) or a malformed option (responses).
[[nodiscard]] bool parseClientSubnet(const uint8_t* p, size_t len, bool query, ClientSubnet& ecs);

}  // namespace meridian::dns
