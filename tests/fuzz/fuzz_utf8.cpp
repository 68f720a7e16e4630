// Utf8Stream against a plain whole-input reference decoder: for any bytes split into any chunks,
// the streamed output (replace policy) equals the reference's maximal-subpart replacement, and
// the keep policy gives back exactly the input.
#include <rwkv/utf8.hpp>

#include "fuzz_support.hpp"

namespace {

// The Unicode "maximal subpart" rule written the slow, obvious way: decode a code point from the
// lead byte; on the first byte that cannot continue it, replace what was read so far by U+FFFD.
std::string reference(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        int need = b < 0x80                   ? 0
                   : (b >= 0xC2 && b <= 0xDF) ? 1
                   : (b >= 0xE0 && b <= 0xEF) ? 2
                   : (b >= 0xF0 && b <= 0xF4) ? 3
                                              : -1;
        if (need < 0) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        std::uint32_t cp = need == 0 ? b : need == 1 ? (b & 0x1F) : need == 2 ? (b & 0x0F) : (b & 0x07);
        int k = 1;
        for (; k <= need; ++k) {
            if (i + k >= s.size()) break;
            const auto c = static_cast<unsigned char>(s[i + k]);
            if ((c & 0xC0) != 0x80) break;
            const std::uint32_t next = (cp << 6) | (c & 0x3F);
            // Reject as soon as the prefix can only be an overlong, a surrogate or > U+10FFFF.
            if (k == 1 && ((need == 2 && next < 0x20) || (need == 2 && (next >> 5) == 0x1B) ||
                           (need == 3 && next < 0x10) || (need == 3 && next > 0x10F)))
                break;
            cp = next;
        }
        if (k <= need) {
            out += "\xEF\xBF\xBD";
            i += static_cast<std::size_t>(k);
        } else {
            out.append(s.substr(i, static_cast<std::size_t>(need) + 1));
            i += static_cast<std::size_t>(need) + 1;
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // First byte: chunking seed; the rest is the text.
    const unsigned seed = data[0];
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    rwkv::Utf8Stream rep, keep(rwkv::utf8_invalid::keep);
    std::string got_rep, got_keep;
    std::size_t pos = 0, step = 0;
    while (pos < text.size()) {
        const std::size_t want = 1 + ((seed >> (step % 8)) & 3) * (step % 3);
        ++step;
        const std::size_t len = std::min<std::size_t>(text.size() - pos, want);
        const std::string_view chunk = text.substr(pos, len);
        got_rep += rep.push(chunk);
        got_keep += keep.push(chunk);
        if (rep.pending() > 3 || keep.pending() > 3) fuzz::finding("utf8: more than 3 bytes held");
        pos += len;
    }
    got_rep += rep.flush();
    got_keep += keep.flush();
    if (got_keep != text) fuzz::finding("utf8: keep policy changed the bytes");
    if (got_rep != reference(text)) fuzz::finding("utf8: replace policy differs from the reference decoder");
    return 0;
}
