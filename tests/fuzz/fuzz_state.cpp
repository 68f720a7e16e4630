// State::deserialize on any bytes: restores a state or throws rwkv::error; never reads past the
// input. The target state's shape comes from the first byte (a default, empty State included).
#include <rwkv/state.hpp>

#include <cstring>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    rwkv::State st;
    if (data[0] & 1) {
        rwkv::Config c;
        c.version = (data[0] & 2) ? rwkv::Version::x060 : rwkv::Version::x052;
        c.n_layer = 1 + (data[0] >> 5);
        c.n_embd = 16;
        c.head_size = 8;
        c.vocab_size = 64;
        c.finalize();
        st = rwkv::State(c);
    }
    try {
        st.deserialize(fuzz::bytes_of(data + 1, size - 1), "fuzz.state");
        // A format-2 state that loaded serialises back to the same bytes (format 1 is upgraded).
        // (Only for fingerprint 0: the target state's own fingerprint is 0 here.)
        std::uint32_t format = 0;
        std::uint64_t fingerprint = 1;
        std::memcpy(&format, data + 1 + 8, 4);
        if (format == 2) std::memcpy(&fingerprint, data + 1 + 12 + 40, 8);
        const auto again = st.serialize();
        if (format == 2 && fingerprint == 0 &&
            (again.size() != size - 1 || std::memcmp(again.data(), data + 1, size - 1) != 0))
            fuzz::finding("state: serialize(deserialize(x)) != x");
    } catch (const rwkv::error&) {}
    return 0;
}
