#pragma once
// rwkv::Utf8Stream — incremental UTF-8 for generation output (spec 6.3, pitfall 15).
//
// A token may end in the middle of a character (a CJK character or an emoji can be split
// over two or more tokens). Feed each token's bytes; get back only what can be printed now:
// every complete, well-formed sequence, in order. A trailing prefix that may still become a
// valid character is held. Bytes that can no longer start or continue a valid sequence are
// released at once, by policy:
//   utf8_invalid::replace (default) — each maximal ill-formed subpart becomes one U+FFFD
//     (the Unicode "maximal subpart" practice, which is also what Python's
//     bytes.decode('utf-8', 'replace') does), so the output is always valid UTF-8;
//   utf8_invalid::keep — the raw bytes are released unchanged, so the concatenated output
//     is exactly the concatenated input.
// Nothing is dropped or reordered in either mode. flush() ends the stream and releases what
// is held (as one U+FFFD, or raw).

#include <rwkv/token.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv {

// Appends code point `cp` (0 .. 0x10FFFF) to `out` as 1-4 bytes of UTF-8 (RFC 3629 table).
// Callers (the World vocabulary's and pickle's escapes, the tests' JSON reader) range-check cp
// first; surrogates are passed through, as those formats' own decoders do.
inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

enum class utf8_invalid { replace, keep };

class Utf8Stream {
public:
    explicit Utf8Stream(utf8_invalid policy = utf8_invalid::replace) : policy_(policy) {}

    // Returns the bytes that became printable; the view is valid until the next call on
    // this object (its buffer is reused, so steady-state streaming does not allocate).
    std::string_view push(std::string_view bytes) {
        out_.clear();
        if (held_.empty()) {
            held_.assign(bytes.substr(scan(bytes)));
        } else {
            joined_.assign(held_);
            joined_.append(bytes);
            const std::size_t used = scan(joined_);
            held_.assign(std::string_view(joined_).substr(used));
        }
        return out_;
    }

    // Convenience for generation loops: push(tokenizer.token_bytes(id)).
    template <class Tokenizer>
    std::string_view push_token(const Tokenizer& tokenizer, token id) {
        return push(tokenizer.token_bytes(id));
    }

    // End of stream: an incomplete trailing sequence can no longer complete.
    std::string_view flush() {
        out_.clear();
        if (!held_.empty()) invalid(held_);
        held_.clear();
        return out_;
    }

    // Bytes held back (0..3), waiting for the rest of a character.
    std::size_t pending() const noexcept { return held_.size(); }

    void reset() noexcept {
        held_.clear();
        out_.clear();
    }

private:
    utf8_invalid policy_;
    std::string held_, joined_, out_;

    void invalid(std::string_view bytes) {
        if (policy_ == utf8_invalid::replace) out_ += "\xEF\xBF\xBD";
        else out_ += bytes;
    }

    // Emits everything decidable; returns how many bytes were consumed (the rest is a
    // possibly-valid incomplete sequence at the very end).
    std::size_t scan(std::string_view s) {
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        const std::size_t n = s.size();
        std::size_t i = 0;
        while (i < n) {
            const unsigned char b = p[i];
            if (b < 0x80) {
                std::size_t j = i + 1;
                while (j < n && p[j] < 0x80) ++j;
                out_.append(s.data() + i, j - i);
                i = j;
                continue;
            }
            // Well-formed sequences (Unicode table 3-7): the second byte's range depends on
            // the lead byte (this excludes overlongs, surrogates and values > U+10FFFF).
            std::size_t need;
            unsigned char lo = 0x80, hi = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) {
                need = 1;
            } else if (b >= 0xE0 && b <= 0xEF) {
                need = 2;
                if (b == 0xE0) lo = 0xA0;
                if (b == 0xED) hi = 0x9F;
            } else if (b >= 0xF0 && b <= 0xF4) {
                need = 3;
                if (b == 0xF0) lo = 0x90;
                if (b == 0xF4) hi = 0x8F;
            } else {  // 80..C1, F5..FF never start a sequence
                invalid(s.substr(i, 1));
                ++i;
                continue;
            }
            std::size_t k = 1;
            for (; k <= need; ++k) {
                if (i + k >= n) return i;  // valid so far, incomplete: hold from the lead byte
                const unsigned char c = p[i + k];
                if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
            }
            if (k <= need) {  // ill-formed: the bytes before the offending one are one unit
                invalid(s.substr(i, k));
                i += k;
            } else {
                out_.append(s.data() + i, need + 1);
                i += need + 1;
            }
        }
        return i;
    }
};

}  // namespace rwkv
