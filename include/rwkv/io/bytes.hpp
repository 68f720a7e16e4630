#pragma once
// Little-endian loads from unaligned file bytes, shared by the format readers. Callers check
// bounds first; these never do (they sit in the innermost parsing loops).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rwkv::io::detail {

template <class T>
inline T load_le(const std::byte* p) noexcept {
    static_assert(std::is_unsigned_v<T>);
    // Assembled byte by byte: correct on any host endianness and free of alignment UB.
    T v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i)
        v |= static_cast<T>(static_cast<T>(std::to_integer<unsigned>(p[i])) << (8 * i));
    return v;
}

}  // namespace rwkv::io::detail
