#pragma once
// rwkv::token — a vocabulary id. Signed so that "no token" (-1) and arithmetic on ids
// cannot silently wrap; 32 bits cover every RWKV vocabulary (65536 ids).

#include <cstdint>

namespace rwkv {

using token = std::int32_t;

}  // namespace rwkv
