#pragma once
// rwkv::WorldTokenizer — the RWKV World vocabulary (rwkv_vocab_v20230424.txt), greedy longest
// byte match exactly as spec section 6.2; and rwkv::ByteTokenizer for byte-level models.
//
// Data structure (why it is fast): a double-array trie whose units are 8 bytes
// {child base, id << 9 | label}. Every internal node has its own base, so a slot belongs to the
// node being walked iff its stored label equals the input byte: one dependent 8-byte load per
// input byte, no per-node heap objects, 1.2 MB for the World vocabulary. The first two
// bytes of every token are resolved by a 65536-entry table (512 KiB), which is the whole walk
// for most tokens of short-token scripts. The walk has no bounds check while at least
// (longest token + 1) bytes remain, which is the bulk of any input.

#include <rwkv/error.hpp>
#include <rwkv/token.hpp>
#include <rwkv/utf8.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace rwkv {

namespace detail {

// Whole-file read with stdio: no iostream overhead, one allocation.
inline std::string read_whole_file(const std::filesystem::path& path, const char* what) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw error(std::string("cannot open ") + what + " " + path.string() + ": " + std::strerror(errno));
    std::string data;
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (!ec) data.resize(static_cast<std::size_t>(size));
    std::size_t got = data.empty() ? 0 : std::fread(data.data(), 1, data.size(), f);
    // A file that changed size under us (or a pipe) is read to its end the slow way.
    if (ec || got == data.size()) {
        char buf[65536];
        data.resize(got);
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) data.append(buf, n);
    } else {
        data.resize(got);
    }
    bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw error(std::string("cannot read ") + what + " " + path.string());
    return data;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes one Python string or bytes literal (spec 6.1) and appends its bytes to `out`.
// Returns nullptr on success or a description of what is wrong.
inline const char* decode_python_literal(std::string_view lit, std::string& out) {
    bool is_bytes = false;
    if (!lit.empty() && (lit[0] == 'b' || lit[0] == 'B')) {
        is_bytes = true;
        lit.remove_prefix(1);
    }
    if (lit.size() < 2 || (lit[0] != '\'' && lit[0] != '"') || lit.back() != lit[0])
        return "literal is not a quoted Python string or bytes literal";
    const char quote = lit[0];
    lit = lit.substr(1, lit.size() - 2);
    for (std::size_t i = 0; i < lit.size();) {
        const char ch = lit[i];
        if (ch == quote) return "unescaped quote inside the literal";
        if (ch != '\\') {
            // Python rejects non-ASCII characters in a bytes literal.
            if (is_bytes && static_cast<unsigned char>(ch) >= 0x80) return "non-ASCII character in a bytes literal";
            out += ch;  // text literal: the file's UTF-8 bytes are the token's bytes
            ++i;
            continue;
        }
        if (i + 1 >= lit.size()) return "literal ends with a backslash";
        const char e = lit[i + 1];
        i += 2;
        std::uint32_t value = 0;
        bool is_code = false;  // value is a number: a byte (bytes) or a code point (text)
        switch (e) {
            case '\\': out += '\\'; break;
            case '\'': out += '\''; break;
            case '"': out += '"'; break;
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case 'a': out += '\a'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'v': out += '\v'; break;
            case 'x':
            case 'u':
            case 'U': {
                const std::size_t digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if (e != 'x' && is_bytes) {  // \u and \U are not escapes in bytes literals
                    out += '\\';
                    out += e;
                    break;
                }
                if (i + digits > lit.size()) return "truncated \\x, \\u or \\U escape";
                for (std::size_t k = 0; k < digits; ++k) {
                    int h = hex_value(lit[i + k]);
                    if (h < 0) return "bad hex digit in a \\x, \\u or \\U escape";
                    value = value * 16 + static_cast<std::uint32_t>(h);
                }
                i += digits;
                is_code = true;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {  // octal: up to three digits
                    value = static_cast<std::uint32_t>(e - '0');
                    for (int k = 0; k < 2 && i < lit.size() && lit[i] >= '0' && lit[i] <= '7'; ++k)
                        value = value * 8 + static_cast<std::uint32_t>(lit[i++] - '0');
                    is_code = true;
                } else {
                    // Python keeps unknown escapes verbatim (backslash included).
                    if (is_bytes && static_cast<unsigned char>(e) >= 0x80)
                        return "non-ASCII character in a bytes literal";
                    out += '\\';
                    out += e;
                }
        }
        if (is_code) {
            if (is_bytes) {
                if (value > 0xFF) return "escape value above 0xFF in a bytes literal";
                out += static_cast<char>(value);
            } else {
                // The trap of spec 6.1: '\x80' is U+0080, i.e. two bytes C2 80.
                if (value > 0x10FFFF) return "code point above U+10FFFF";
                if (value >= 0xD800 && value <= 0xDFFF) return "surrogate code point cannot be encoded as UTF-8";
                rwkv::append_utf8(out, value);
            }
        }
    }
    return nullptr;
}

inline bool parse_decimal(std::string_view s, std::uint64_t& v) {
    if (s.empty() || s.size() > 9) return false;
    v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

}  // namespace detail

class WorldTokenizer {
public:
    // Id 0 is not in the vocabulary file: it is end of text and decodes to no bytes.
    static constexpr token end_of_text = 0;

    explicit WorldTokenizer(const std::filesystem::path& vocab)
        : WorldTokenizer(detail::read_whole_file(vocab, "vocabulary file"), vocab.string()) {}

    // Vocabulary from memory; `source_name` is what error messages call it.
    static WorldTokenizer from_text(std::string_view contents, std::string_view source_name = "<memory>") {
        return WorldTokenizer(contents, std::string(source_name));
    }

    // Greedy longest match (spec 6.2); appends to `out`, allocating only when it grows.
    void encode(std::string_view bytes, std::vector<token>& out) const {
        const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
        const std::size_t n = bytes.size();
        std::size_t pos = 0;
        // Bulk: no bounds checks while any walk stays inside the input (see file comment).
        const std::size_t safe = n > guard_ ? n - guard_ : 0;
        while (pos < safe) {
            // Output in blocks: resize once, write through a pointer (tokens <= bytes).
            const std::size_t block_end = std::min(safe, pos + kBlock);
            const std::size_t old = out.size();
            out.resize(old + (block_end - pos));
            token* w = out.data() + old;
            const Unit* units = units_.data();
            const Pair* pairs = pairs_.data();
            while (pos < block_end) {
                const Pair e = pairs[(std::size_t{s[pos]} << 8) | s[pos + 1]];
                std::uint32_t best = e.meta >> 8;
                std::size_t end = pos + (e.meta & 0xFF);
                std::uint32_t base = e.base;
                std::size_t j = pos + 2;
                for (;;) {
                    const unsigned c = s[j];
                    const Unit u = units[base + c];
                    if ((u.meta & 0x1FF) != c) break;
                    ++j;
                    const std::uint32_t id = u.meta >> 9;
                    best = id ? id : best;
                    end = id ? j : end;
                    base = u.base;
                }
                if (best == 0) [[unlikely]]
                    unencodable(s[pos], pos);
                *w++ = static_cast<token>(best);
                pos = end;
            }
            out.resize(static_cast<std::size_t>(w - out.data()));
        }
        // Tail: the same walk from the root, bounds-checked.
        while (pos < n) {
            std::uint32_t base = root_base_, best = 0;
            std::size_t end = pos;
            for (std::size_t j = pos; j < n;) {
                const unsigned c = s[j];
                const Unit u = units_[base + c];
                if ((u.meta & 0x1FF) != c) break;
                ++j;
                if (u.meta >> 9) {
                    best = u.meta >> 9;
                    end = j;
                }
                base = u.base;
            }
            if (best == 0) unencodable(s[pos], pos);
            out.push_back(static_cast<token>(best));
            pos = end;
        }
    }

    std::vector<token> encode(std::string_view bytes) const {
        std::vector<token> out;
        out.reserve(bytes.size() / 3 + 16);  // ~2.7 bytes per token on multilingual text
        encode(bytes, out);
        return out;
    }

    // Concatenated raw bytes (not necessarily valid UTF-8; see <rwkv/utf8.hpp>); appends.
    void decode(std::span<const token> ids, std::string& out) const {
        std::size_t total = 0;
        for (token id : ids) total += entry(id).len;  // validates every id first
        const std::size_t old = out.size();
        // Fixed 16-byte copies into slack beyond the end beat a memcpy call per token; the
        // arena is padded so the source side never runs past it either.
        out.resize(old + total + 16);
        char* w = out.data() + old;
        const char* arena = arena_.data();
        for (token id : ids) {
            const Entry& en = entries_[static_cast<std::size_t>(id)];
            const char* src = arena + en.offset;
            std::memcpy(w, src, 16);
            for (std::uint32_t k = 16; k < en.len; k += 16) std::memcpy(w + k, src + k, 16);
            w += en.len;
        }
        out.resize(old + total);
    }

    std::string decode(std::span<const token> ids) const {
        std::string out;
        decode(ids, out);
        return out;
    }

    // One token's bytes, for streaming output; "" for end_of_text; throws for unknown ids.
    std::string_view token_bytes(token id) const {
        const Entry& en = entry(id);
        return std::string_view(arena_.data() + en.offset, en.len);
    }

    bool contains(token id) const noexcept {
        return static_cast<std::size_t>(id) < entries_.size() && entries_[static_cast<std::size_t>(id)].valid;
    }

    // Mask over a model's `n` ids (its vocab_size, e.g. 65536 rows for World): true where
    // decode()/token_bytes() accept the id (0 = end of text included), false for the rows the
    // vocabulary does not define (65530..65535 for World). Give it to ban_invalid_ids()
    // (sampler.hpp) so generation never draws an id it cannot print.
    std::vector<bool> valid_ids(std::size_t n) const {
        std::vector<bool> out(n);
        for (std::size_t i = 0; i < n && i < entries_.size(); ++i) out[i] = entries_[i].valid != 0;
        return out;
    }

    // Embedding rows a model for this vocabulary has: (largest id + 1) rounded up to a
    // multiple of 64, which gives the 65536 rows of every World model (ids 65530…65535 exist
    // as rows but are never produced; decoding them is an error).
    std::size_t vocab_size() const noexcept { return (entries_.size() + 63) / 64 * 64; }

    // Ids defined by the file (65529 for World), and the largest one.
    std::size_t token_count() const noexcept { return token_count_; }
    token max_token_id() const noexcept { return static_cast<token>(entries_.size() - 1); }

    // Heap bytes of the encoder's search structures (double-array trie + pair table).
    std::size_t trie_memory_bytes() const noexcept {
        return units_.capacity() * sizeof(Unit) + pairs_.capacity() * sizeof(Pair);
    }
    // Everything: trie plus the id -> bytes table used by decode.
    std::size_t memory_bytes() const noexcept {
        return trie_memory_bytes() + entries_.capacity() * sizeof(Entry) + arena_.capacity();
    }

private:
    struct Unit {
        std::uint32_t base;  // children of this node live at base + byte
        std::uint32_t meta;  // token id << 9 | label (label 0x100 = empty slot)
    };
    struct Pair {
        std::uint32_t base;  // base of the node after two bytes (dead region if none)
        std::uint32_t meta;  // best token id so far << 8 | its length (1 or 2)
    };
    struct Entry {
        std::uint32_t offset = 0;
        std::uint16_t len = 0;
        std::uint16_t valid = 0;
    };
    static constexpr std::uint32_t kEmpty = 0x100;
    static constexpr std::size_t kBlock = 1 << 16;
    static constexpr std::size_t kMaxTokenBytes = 0xFFFF;
    static constexpr std::uint32_t kMaxId = (1u << 23) - 1;  // what the 23 id bits can hold

    std::vector<Unit> units_;
    std::vector<Pair> pairs_;
    std::vector<Entry> entries_;  // indexed by id
    std::string arena_;           // all token bytes, 16 bytes of padding at the end
    std::uint32_t root_base_ = 0;
    std::size_t guard_ = 3;  // walk needs s[pos .. pos + longest]; pair table needs 2 bytes
    std::size_t token_count_ = 0;

    const Entry& entry(token id) const {
        if (!contains(id))
            throw error("token id " + std::to_string(id) + " is not in the vocabulary (ids 0.." +
                        std::to_string(entries_.size() - 1) + ")");
        return entries_[static_cast<std::size_t>(id)];
    }

    [[noreturn]] static void unencodable(unsigned char byte, std::size_t pos) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", byte);
        throw error(std::string("vocabulary has no token for byte ") + hex + " at offset " + std::to_string(pos));
    }

    WorldTokenizer(std::string_view text, const std::string& name) {
        parse(text, name);
        build_trie();
    }

    void parse(std::string_view text, const std::string& name) {
        entries_.reserve(65536);
        arena_.reserve(text.size() / 2);
        std::string lit;
        std::size_t line_no = 0;
        auto fail = [&](const std::string& what) { throw error(name + ":" + std::to_string(line_no) + ": " + what); };
        for (std::size_t p = 0; p < text.size();) {
            ++line_no;
            std::size_t nl = text.find('\n', p);
            if (nl == std::string_view::npos) nl = text.size();
            std::string_view line = text.substr(p, nl - p);
            p = nl + 1;
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF copies
            // Split at the first and the last space: literals contain spaces (spec 6.1).
            const std::size_t first = line.find(' ');
            const std::size_t last = line.rfind(' ');
            if (first == std::string_view::npos || first == last) fail("expected '<id> <literal> <byte length>'");
            std::uint64_t id = 0, len = 0;
            if (!detail::parse_decimal(line.substr(0, first), id))
                fail("bad id '" + std::string(line.substr(0, first)) + "'");
            if (!detail::parse_decimal(line.substr(last + 1), len))
                fail("bad byte length '" + std::string(line.substr(last + 1)) + "'");
            if (id == 0) fail("id 0 is reserved for end of text");
            if (id > kMaxId) fail("id " + std::to_string(id) + " is too large");
            lit.clear();
            if (const char* why = detail::decode_python_literal(line.substr(first + 1, last - first - 1), lit))
                fail(why);
            if (lit.empty()) fail("empty token");
            if (lit.size() != len)
                fail("length column says " + std::to_string(len) + " but the literal has " +
                     std::to_string(lit.size()) + " bytes");
            if (lit.size() > kMaxTokenBytes) fail("token longer than 65535 bytes");
            if (id >= entries_.size()) entries_.resize(id + 1);
            Entry& en = entries_[id];
            if (en.valid) fail("duplicate id " + std::to_string(id));
            en.offset = static_cast<std::uint32_t>(arena_.size());
            en.len = static_cast<std::uint16_t>(lit.size());
            en.valid = 1;
            arena_ += lit;
            ++token_count_;
        }
        if (token_count_ == 0) throw error(name + ": vocabulary file has no tokens");
        entries_[0].valid = 1;  // end of text: zero bytes
        entries_[0].offset = 0;
        arena_.append(16, '\0');
    }

    // Builds a linked intermediate trie, then packs it into the double array.
    void build_trie() {
        std::size_t total_len = 0, longest = 0;
        for (const Entry& en : entries_) {
            total_len += en.len;
            longest = std::max<std::size_t>(longest, en.len);
        }
        guard_ = std::max<std::size_t>(longest + 1, 3);

        // Intermediate trie: node 0 = root; children as singly linked sibling lists, with
        // direct tables for depth 0 and 1 where fan-out is large. One 16-byte record per
        // node so a list step touches one cache line.
        struct TNode {
            std::uint32_t first_child = 0, next_sibling = 0, id = 0;
            std::uint16_t n_children = 0;
            std::uint8_t label = 0;
        };
        std::vector<TNode> t;
        t.reserve(total_len / 3 + 1024);  // ~116k nodes for World; total_len + 1 is a bound
        t.emplace_back();
        auto new_node = [&](std::uint32_t parent, std::uint8_t c) {
            const auto n = static_cast<std::uint32_t>(t.size());
            t.push_back(TNode{0, t[parent].first_child, 0, 0, c});
            t[parent].first_child = n;  // index again: push_back may have reallocated
            ++t[parent].n_children;
            return n;
        };
        std::vector<std::uint32_t> depth0(256, 0), depth1(65536, 0);
        for (std::size_t id = 1; id < entries_.size(); ++id) {
            const Entry& en = entries_[id];
            if (!en.valid) continue;
            const auto* k = reinterpret_cast<const unsigned char*>(arena_.data() + en.offset);
            std::uint32_t node = 0;
            for (std::size_t d = 0; d < en.len; ++d) {
                const unsigned char c = k[d];
                std::uint32_t* slot = nullptr;
                std::uint32_t child = 0;
                if (d == 0) {
                    slot = &depth0[c];
                    child = *slot;
                } else if (d == 1) {
                    slot = &depth1[(std::size_t{k[0]} << 8) | c];
                    child = *slot;
                } else {
                    for (child = t[node].first_child; child && t[child].label != c;) child = t[child].next_sibling;
                }
                if (!child) {
                    child = new_node(node, c);
                    if (slot) *slot = child;
                }
                node = child;
            }
            // Equal byte strings: keep the higher id ("longest, then highest id", spec 6.2).
            t[node].id = static_cast<std::uint32_t>(id);
        }
        const std::size_t n_nodes = t.size();

        // Place internal nodes, most children first (they need the emptiest space), then
        // the single-child chains, which fill the holes left behind.
        std::vector<std::uint32_t> order;
        {
            std::vector<std::uint32_t> count_of(258, 0), start(258, 0);
            for (const TNode& nd : t) ++count_of[nd.n_children];
            std::uint32_t acc = 0;
            for (int k = 256; k >= 1; --k) {  // counting sort, descending, internal only
                start[static_cast<std::size_t>(k)] = acc;
                acc += count_of[static_cast<std::size_t>(k)];
            }
            order.resize(acc);
            for (std::size_t n = 0; n < n_nodes; ++n)
                if (t[n].n_children) order[start[t[n].n_children]++] = static_cast<std::uint32_t>(n);
        }

        std::vector<std::uint32_t> base(n_nodes, 0), slot_of(n_nodes, 0);
        std::vector<std::uint8_t> used;       // slot taken
        std::vector<std::uint8_t> base_used;  // bases must be unique (label check)
        std::vector<std::uint8_t> failures;   // times a slot failed as a first-child slot
        // Union-find over candidate first-child slots: smallest candidate >= i. A slot stops
        // being a candidate when taken, or after failing kRetire times: fragmented regions
        // would otherwise be rescanned by every node (this made loading 5x slower).
        std::vector<std::uint32_t> next_free;
        constexpr std::uint8_t kRetire = 4;
        auto grow = [&](std::size_t size) {
            std::size_t old = used.size();
            if (size <= old) return;
            size = std::max(size, old * 3 / 2 + 512);
            used.resize(size, 0);
            base_used.resize(size, 0);
            failures.resize(size, 0);
            next_free.resize(size);
            for (std::size_t i = old; i < size; ++i) next_free[i] = static_cast<std::uint32_t>(i);
        };
        auto find_free = [&](std::uint32_t i) {
            grow(std::size_t{i} + 257);
            std::uint32_t r = i;
            while (next_free[r] != r) r = next_free[r];
            while (next_free[i] != r) {  // path compression
                std::uint32_t nx = next_free[i];
                next_free[i] = r;
                i = nx;
            }
            grow(std::size_t{r} + 257);
            return r;
        };
        grow(1 << 17);
        std::uint32_t labels[256];
        for (std::uint32_t node : order) {
            std::uint32_t m = 0;
            for (std::uint32_t ch = t[node].first_child; ch; ch = t[ch].next_sibling) labels[m++] = t[ch].label;
            std::sort(labels, labels + m);
            std::uint32_t e = find_free(labels[0]);
            for (;;) {
                const std::uint32_t b = e - labels[0];
                grow(std::size_t{b} + 257);
                bool ok = !base_used[b];
                for (std::uint32_t i = 1; ok && i < m; ++i) ok = !used[b + labels[i]];
                if (ok) break;
                if (++failures[e] == kRetire) next_free[e] = e + 1;
                e = find_free(e + 1);
            }
            const std::uint32_t b = e - labels[0];
            base_used[b] = 1;
            base[node] = b;
            for (std::uint32_t ch = t[node].first_child; ch; ch = t[ch].next_sibling) {
                const std::uint32_t s = b + t[ch].label;
                used[s] = 1;
                next_free[s] = s + 1;
                slot_of[ch] = s;
            }
        }

        std::size_t top = 0;  // one past the highest slot or base in use
        for (std::size_t i = used.size(); i > 0; --i)
            if (used[i - 1] || base_used[i - 1]) {
                top = i;
                break;
            }
        const auto dead = static_cast<std::uint32_t>(top);  // 256 empty slots: leaf "children"
        units_.assign(top + 256, Unit{0, kEmpty});
        units_.shrink_to_fit();
        for (std::size_t n = 1; n < n_nodes; ++n)
            units_[slot_of[n]] = Unit{t[n].n_children ? base[n] : dead, (t[n].id << 9) | t[n].label};
        root_base_ = t[0].n_children ? base[0] : dead;

        pairs_.assign(65536, Pair{dead, 0});
        for (std::size_t b0 = 0; b0 < 256; ++b0) {
            const std::uint32_t n1 = depth0[b0];
            const std::uint32_t id1 = n1 ? t[n1].id : 0;
            for (std::size_t b1 = 0; b1 < 256; ++b1) {
                const std::uint32_t n2 = n1 ? depth1[(b0 << 8) | b1] : 0;
                Pair& p = pairs_[(b0 << 8) | b1];
                p.base = n2 && t[n2].n_children ? base[n2] : dead;
                p.meta = n2 && t[n2].id ? (t[n2].id << 8) | 2 : (id1 << 8) | 1;
            }
        }
    }
};

// Byte-level tokenizer (the tiny fixture models): id = byte value, 256 ids, no end-of-text
// id (0 is the byte 0x00). Same interface as WorldTokenizer.
class ByteTokenizer {
public:
    void encode(std::string_view bytes, std::vector<token>& out) const {
        const std::size_t old = out.size();
        out.resize(old + bytes.size());
        for (std::size_t i = 0; i < bytes.size(); ++i)
            out[old + i] = static_cast<token>(static_cast<unsigned char>(bytes[i]));
    }
    std::vector<token> encode(std::string_view bytes) const {
        std::vector<token> out;
        encode(bytes, out);
        return out;
    }
    void decode(std::span<const token> ids, std::string& out) const {
        for (token id : ids) check(id);
        const std::size_t old = out.size();
        out.resize(old + ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) out[old + i] = static_cast<char>(ids[i]);
    }
    std::string decode(std::span<const token> ids) const {
        std::string out;
        decode(ids, out);
        return out;
    }
    std::string_view token_bytes(token id) const {
        check(id);
        // The mask is a no-op after check(); it lets the compiler see the index is in range.
        return std::string_view(&table()[static_cast<std::size_t>(id) & 0xFF], 1);
    }
    bool contains(token id) const noexcept { return id >= 0 && id < 256; }
    // Mask over a model's `n` ids: true for 0..255 (see WorldTokenizer::valid_ids).
    std::vector<bool> valid_ids(std::size_t n) const {
        std::vector<bool> out(n);
        for (std::size_t i = 0; i < n && i < 256; ++i) out[i] = true;
        return out;
    }
    std::size_t vocab_size() const noexcept { return 256; }
    std::size_t token_count() const noexcept { return 256; }
    token max_token_id() const noexcept { return 255; }

private:
    static void check(token id) {
        if (id < 0 || id > 255)
            throw error("token id " + std::to_string(id) + " is not in the byte vocabulary (ids 0..255)");
    }
    static const std::array<char, 256>& table() {
        static const std::array<char, 256> t = [] {
            std::array<char, 256> a{};
            for (std::size_t i = 0; i < 256; ++i) a[i] = static_cast<char>(i);
            return a;
        }();
        return t;
    }
};

}  // namespace rwkv
