#pragma once
// A small, safe reader for the pickle subset that torch.save writes (spec 8.1), at every
// protocol torch.save can be asked for (1-5; the text-form opcodes of protocol 0 that carry plain
// values are read too). It is a data parser, not an interpreter: only an allowlist of globals is recognised, and
// "calling" one builds a plain record (dict, storage reference, tensor description) — nothing is executed.
//
// Hostile input is bounded structurally: objects live in flat tables addressed by index
// (no owning pointers, so no deep recursive destruction and no leaks from cyclic memo tricks),
// the machine never recurses, every read is bounds-checked, and the input size and the number
// of values created are capped (see limits).

#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../utf8.hpp"
#include "bytes.hpp"
#include "tensor.hpp"

namespace rwkv::io::pickle {

enum class kind : std::uint8_t { none, boolean, integer, real, string, tuple, list, dict, global, storage, tensor };

// A pickled value. Scalars are held inline; everything else is an index into the owning
// document's table for that kind (tuples and lists share `sequences`).
struct value {
    kind type = kind::none;
    std::int64_t i = 0;  // boolean / integer value, or table index
    double f = 0;        // real
};

// The recognised globals. Anything else is refused when it is named, before any use.
enum class callable : std::uint8_t {
    ordered_dict,                  // collections.OrderedDict
    rebuild_tensor_v2,             // torch._utils._rebuild_tensor_v2
    rebuild_parameter,             // torch._utils._rebuild_parameter
    rebuild_parameter_with_state,  // torch._utils._rebuild_parameter_with_state
    rebuild_from_type_v2,          // torch._utils / torch._tensor ._rebuild_from_type_v2
    storage_class,                 // torch.<X>Storage: only a dtype tag inside persistent ids
    type_tag,                      // torch.Tensor, torch.nn.parameter.Parameter: only tags
};

struct global_ref {
    std::string module, name;
    callable what = callable::type_tag;
    dtype type = dtype::f32;  // for storage_class
};

struct storage_ref {
    dtype type = dtype::f32;
    std::string key;       // record name under "<archive>/data/"
    std::string location;  // "cpu", "cuda:0", ...: informational
    std::int64_t numel = 0;
};

struct tensor_ref {
    std::size_t storage = 0;  // index into document::storages
    std::int64_t storage_offset = 0;
    std::vector<std::int64_t> shape, stride;
    bool requires_grad = false;
};

struct dict_ref {
    std::vector<std::pair<value, value>> items;  // insertion order, duplicates kept as written
    bool ordered = false;                        // built by collections.OrderedDict()
};

struct limits {
    std::size_t max_input_bytes = std::size_t{256} << 20;  // real state dicts: ~100 bytes/tensor
    std::size_t max_values = std::size_t{1} << 24;         // pushes, incl. container items
};

struct document {
    std::string where;  // prefix of error messages
    value root;
    std::vector<std::string> strings;
    std::vector<std::vector<value>> sequences;
    std::vector<dict_ref> dicts;
    std::vector<global_ref> globals;
    std::vector<storage_ref> storages;
    std::vector<tensor_ref> tensors;

    // Typed access; a kind mismatch is a malformed file, reported as such.
    const std::string& str(value v) const { return strings[index(v, kind::string)]; }
    const std::vector<value>& items(value v) const {
        if (v.type != kind::list) return sequences[index(v, kind::tuple)];
        return sequences[static_cast<std::size_t>(v.i)];
    }
    const dict_ref& dict(value v) const { return dicts[index(v, kind::dict)]; }
    const tensor_ref& tensor(value v) const { return tensors[index(v, kind::tensor)]; }
    const storage_ref& storage(value v) const { return storages[index(v, kind::storage)]; }
    const global_ref& global(value v) const { return globals[index(v, kind::global)]; }

private:
    std::size_t index(value v, kind k) const {
        if (v.type != k) throw rwkv::error(where + ": unexpected pickle value type");
        return static_cast<std::size_t>(v.i);
    }
};

namespace detail {

inline std::string hex_byte(unsigned b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", b & 0xFFu);
    return buf;
}

// Storage class name -> dtype (spec 8.1 table). False for anything else.
inline bool storage_dtype(std::string_view name, dtype& out) {
    struct row {
        std::string_view name;
        dtype t;
    };
    static constexpr row table[] = {
        {"FloatStorage", dtype::f32},    {"HalfStorage", dtype::f16}, {"BFloat16Storage", dtype::bf16},
        {"DoubleStorage", dtype::f64},   {"LongStorage", dtype::i64}, {"IntStorage", dtype::i32},
        {"ShortStorage", dtype::i16},    {"CharStorage", dtype::i8},  {"ByteStorage", dtype::u8},
        {"BoolStorage", dtype::boolean},
    };
    for (const row& r : table)
        if (r.name == name) {
            out = r.t;
            return true;
        }
    return false;
}

class machine {
public:
    machine(std::span<const std::byte> in, std::string_view where, const limits& lim) : in_(in), lim_(lim) {
        doc_.where = std::string(where);
        if (in.size() > lim.max_input_bytes)
            throw rwkv::error(doc_.where + ": pickle of " + std::to_string(in.size()) + " bytes exceeds the " +
                              std::to_string(lim.max_input_bytes) + "-byte limit");
    }

    document run() {
        for (;;) {
            if (pos_ >= in_.size()) fail_at(in_.size(), "truncated pickle (no STOP opcode)");
            op_at_ = pos_;
            const unsigned op = std::to_integer<unsigned>(in_[pos_++]);
            switch (op) {
                case 0x80: {  // PROTO
                    const unsigned proto = u8();
                    if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
                    break;
                }
                case 0x95: {  // FRAME: only a buffering hint
                    (void)read_le<std::uint64_t>();
                    break;
                }
                case 'c': {  // GLOBAL
                    std::string module = line();
                    std::string name = line();
                    push(resolve(std::move(module), std::move(name)));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    value name = pop(), module = pop();
                    if (name.type != kind::string || module.type != kind::string)
                        fail("STACK_GLOBAL needs two strings");
                    push(resolve(doc_.str(module), doc_.str(name)));
                    break;
                }
                case 'q': memo_[u8()] = top(); break;                      // BINPUT
                case 'r': memo_[read_le<std::uint32_t>()] = top(); break;  // LONG_BINPUT
                case 0x94: {                                               // MEMOIZE
                    const auto key = static_cast<std::uint32_t>(memo_.size());
                    memo_[key] = top();
                    break;
                }
                case 'h': get(u8()); break;                                       // BINGET
                case 'j': get(read_le<std::uint32_t>()); break;                   // LONG_BINGET
                case '(': marks_.push_back(stack_.size()); break;                 // MARK
                case ')': push(new_sequence(kind::tuple, {})); break;             // EMPTY_TUPLE
                case 't': push(new_sequence(kind::tuple, pop_to_mark())); break;  // TUPLE
                case 0x85: push(new_sequence(kind::tuple, pop_n(1))); break;      // TUPLE1
                case 0x86: push(new_sequence(kind::tuple, pop_n(2))); break;      // TUPLE2
                case 0x87: push(new_sequence(kind::tuple, pop_n(3))); break;      // TUPLE3
                case ']': push(new_sequence(kind::list, {})); break;              // EMPTY_LIST
                case 'a': {                                                       // APPEND
                    value v = pop();
                    list_at_top().push_back(v);
                    count(1);
                    break;
                }
                case 'e': {  // APPENDS
                    std::vector<value> vs = pop_to_mark();
                    std::vector<value>& l = list_at_top();
                    l.insert(l.end(), vs.begin(), vs.end());
                    break;
                }
                case '}': push(new_dict(false)); break;  // EMPTY_DICT
                case 's': {                              // SETITEM
                    value v = pop(), k = pop();
                    dict_at_top().items.emplace_back(k, v);
                    count(1);
                    break;
                }
                case 'u': {  // SETITEMS
                    std::vector<value> kv = pop_to_mark();
                    if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
                    dict_ref& d = dict_at_top();
                    for (std::size_t j = 0; j < kv.size(); j += 2) d.items.emplace_back(kv[j], kv[j + 1]);
                    break;
                }
                case 'X': push_string(read_le<std::uint32_t>()); break;   // BINUNICODE
                case 0x8c: push_string(u8()); break;                      // SHORT_BINUNICODE
                case 0x8d: push_string(read_le<std::uint64_t>()); break;  // BINUNICODE8
                case 'J':                                                 // BININT (i32)
                    push(integer(static_cast<std::int32_t>(read_le<std::uint32_t>())));
                    break;
                case 'K': push(integer(u8())); break;                      // BININT1
                case 'M': push(integer(read_le<std::uint16_t>())); break;  // BININT2
                case 0x8a: push(integer(long1())); break;                  // LONG1
                case 'N': push(value{}); break;                            // NONE
                case 0x88: push(value{kind::boolean, 1, 0}); break;        // NEWTRUE
                case 0x89: push(value{kind::boolean, 0, 0}); break;        // NEWFALSE
                case 'G': {                                                // BINFLOAT (big-endian)
                    need(8);
                    std::uint64_t bits = 0;
                    for (int j = 0; j < 8; ++j) bits = (bits << 8) | std::to_integer<std::uint64_t>(in_[pos_++]);
                    push(value{kind::real, 0, std::bit_cast<double>(bits)});
                    break;
                }
                case 'R': {  // REDUCE
                    value args = pop(), fn = pop();
                    push(call(fn, args));
                    break;
                }
                case 'b': {  // BUILD: object state (OrderedDict _metadata, tensor __dict__) is
                             // unused
                    pop();
                    const value obj = top();
                    if (obj.type != kind::dict && obj.type != kind::tensor) fail("BUILD on an unsupported object");
                    break;
                }
                case 'Q':
                    push(persistent_load(pop()));
                    break;  // BINPERSID
                // ---- protocols 0-2: text numbers and memo keys, Python 2 strings, MARK-built
                // containers, stack manipulation, NEWOBJ.
                case 'I': {  // INT: "00"/"01" are False/True (protocol 1 bools), else a decimal
                    const std::string l = line();
                    if (l == "00" || l == "01") push(value{kind::boolean, l == "01", 0});
                    else push(integer(text_int(l, "INT")));
                    break;
                }
                case 'L': {  // LONG: decimal with an optional trailing 'L'
                    std::string l = line();
                    if (!l.empty() && l.back() == 'L') l.pop_back();
                    push(integer(text_int(l, "LONG")));
                    break;
                }
                case 'F': {  // FLOAT: repr() text
                    const std::string l = line();
                    double d = 0;
                    const auto r = std::from_chars(l.data(), l.data() + l.size(), d);
                    if (r.ec != std::errc() || r.ptr != l.data() + l.size()) fail("bad FLOAT text '" + l + "'");
                    push(value{kind::real, 0, d});
                    break;
                }
                case 'p': {  // PUT (text key)
                    memo_[memo_key(line())] = top();
                    break;
                }
                case 'g': get(memo_key(line())); break;  // GET (text key)
                case 'V':                                // UNICODE (protocol 0): raw-unicode-escape text, kept as UTF-8
                    push_text_unicode(line());
                    break;
                case 'T':  // BINSTRING: Python 2 str, kept as bytes
                    push_string(read_le<std::uint32_t>());
                    break;
                case 'U': push_string(u8()); break;                              // SHORT_BINSTRING
                case 'l': push(new_sequence(kind::list, pop_to_mark())); break;  // LIST
                case 'd': {                                                      // DICT
                    std::vector<value> kv = pop_to_mark();
                    if (kv.size() % 2 != 0) fail("DICT with an odd number of items");
                    const value d = new_dict(false);
                    for (std::size_t j = 0; j < kv.size(); j += 2)
                        doc_.dicts[static_cast<std::size_t>(d.i)].items.emplace_back(kv[j], kv[j + 1]);
                    push(d);
                    break;
                }
                case '0':  // POP: the top item, or the top MARK when nothing is above it
                    if (!marks_.empty() && stack_.size() == marks_.back()) marks_.pop_back();
                    else pop();
                    break;
                case '1': pop_to_mark(); break;  // POP_MARK
                case '2': push(top()); break;    // DUP
                case 0x81: {                     // NEWOBJ: cls.__new__(cls, *args), only for allowlisted callables
                    value args = pop(), cls = pop();
                    push(call(cls, args));
                    break;
                }
                case 0x92: {  // NEWOBJ_EX: kwargs must be empty
                    value kwargs = pop(), args = pop(), cls = pop();
                    if (kwargs.type != kind::dict || !doc_.dicts[static_cast<std::size_t>(kwargs.i)].items.empty())
                        fail("NEWOBJ_EX with keyword arguments is not supported");
                    push(call(cls, args));
                    break;
                }
                case 0x8b: {  // LONG4: little-endian two's complement of a u32 byte count
                    const std::uint32_t n = read_le<std::uint32_t>();
                    push(integer(long_bytes(n)));
                    break;
                }
                // ---- protocols 3-5: bytes, sets, out-of-band buffers.
                case 'B': push_string(read_le<std::uint32_t>()); break;   // BINBYTES
                case 'C': push_string(u8()); break;                       // SHORT_BINBYTES
                case 0x8e: push_string(read_le<std::uint64_t>()); break;  // BINBYTES8
                case 0x96: push_string(read_le<std::uint64_t>()); break;  // BYTEARRAY8
                case 0x8f: push(new_sequence(kind::list, {})); break;     // EMPTY_SET, kept as a list
                case 0x90: {                                              // ADDITEMS
                    std::vector<value> vs = pop_to_mark();
                    std::vector<value>& l = list_at_top();
                    l.insert(l.end(), vs.begin(), vs.end());
                    break;
                }
                case 0x91: push(new_sequence(kind::list, pop_to_mark())); break;  // FROZENSET, kept as a list
                case 0x97: fail("out-of-band buffers (pickle protocol 5 NEXT_BUFFER) are not supported");
                case 0x98: (void)top(); break;  // READONLY_BUFFER: a flag on the buffer above
                case 0x82:
                case 0x83:
                case 0x84: fail("pickle extension registry codes (EXT1/2/4) are not supported");
                case '.':  // STOP
                    doc_.root = pop();
                    return std::move(doc_);
                default: fail("unknown pickle opcode " + hex_byte(op));
            }
        }
    }

private:
    [[noreturn]] void fail_at(std::size_t at, const std::string& what) const {
        throw rwkv::error(doc_.where + ": " + what + " at pickle offset " + std::to_string(at));
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(op_at_, what); }

    void need(std::uint64_t n) const {
        if (n > in_.size() - pos_)
            fail("truncated pickle: opcode " + hex_byte(std::to_integer<unsigned>(in_[op_at_])) + " needs " +
                 std::to_string(n) + " more bytes");
    }
    unsigned u8() {
        need(1);
        return std::to_integer<unsigned>(in_[pos_++]);
    }
    template <class T>
    T read_le() {
        need(sizeof(T));
        T v = io::detail::load_le<T>(in_.data() + pos_);
        pos_ += sizeof(T);
        return v;
    }
    std::string line() {
        for (std::size_t j = pos_; j < in_.size(); ++j)
            if (in_[j] == std::byte{'\n'}) {
                std::string s(reinterpret_cast<const char*>(in_.data() + pos_), j - pos_);
                pos_ = j + 1;
                return s;
            }
        fail("truncated pickle: GLOBAL name without newline");
    }
    std::int64_t long1() { return long_bytes(u8()); }

    // The byte count of LONG1/LONG4 and their value, sign-extended; more than 8 bytes is refused.
    std::int64_t long_bytes(std::uint64_t n) {
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes is too large");
        need(n);
        std::uint64_t v = 0;
        for (unsigned j = 0; j < n; ++j) v |= std::to_integer<std::uint64_t>(in_[pos_ + j]) << (8 * j);
        if (n > 0 && n < 8 && (std::to_integer<unsigned>(in_[pos_ + n - 1]) & 0x80u))
            v |= ~std::uint64_t{0} << (8 * n);  // sign-extend two's complement
        pos_ += static_cast<std::size_t>(n);
        return static_cast<std::int64_t>(v);  // modular conversion (well defined since C++20)
    }
    std::int64_t text_int(const std::string& l, const char* op) const {
        std::int64_t v = 0;
        const char* b = l.data() + (!l.empty() && l[0] == '+');
        const auto r = std::from_chars(b, l.data() + l.size(), v);
        if (r.ec != std::errc() || r.ptr != l.data() + l.size() || b == l.data() + l.size())
            fail(std::string("bad ") + op + " text '" + l.substr(0, 32) + "' (not a 64-bit integer)");
        return v;
    }
    std::uint32_t memo_key(const std::string& l) const {
        const std::int64_t k = text_int(l, "memo key");
        if (k < 0 || k > 0xFFFFFFFF) fail("memo key " + l + " is out of range");
        return static_cast<std::uint32_t>(k);
    }

    void count(std::size_t n) {
        values_ += n;
        if (values_ > lim_.max_values) fail("pickle creates more than " + std::to_string(lim_.max_values) + " values");
    }
    void push(value v) {
        count(1);
        stack_.push_back(v);
    }
    std::size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
    value pop() {
        if (stack_.size() <= base()) fail("pickle stack underflow");
        value v = stack_.back();
        stack_.pop_back();
        return v;
    }
    value top() const {
        if (stack_.size() <= base()) fail("pickle stack underflow");
        return stack_.back();
    }
    std::vector<value> pop_n(std::size_t n) {
        if (stack_.size() - base() < n) fail("pickle stack underflow");
        std::vector<value> out(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        return out;
    }
    std::vector<value> pop_to_mark() {
        if (marks_.empty()) fail("pickle MARK missing");
        const std::size_t m = marks_.back();
        marks_.pop_back();
        std::vector<value> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return out;
    }
    void get(std::uint32_t key) {
        auto it = memo_.find(key);
        if (it == memo_.end()) fail("pickle memo key " + std::to_string(key) + " is not set");
        push(it->second);
    }

    static value integer(std::int64_t v) { return value{kind::integer, v, 0}; }
    value new_sequence(kind k, std::vector<value> items) {
        doc_.sequences.push_back(std::move(items));
        return value{k, static_cast<std::int64_t>(doc_.sequences.size() - 1), 0};
    }
    value new_dict(bool ordered) {
        doc_.dicts.push_back(dict_ref{{}, ordered});
        return value{kind::dict, static_cast<std::int64_t>(doc_.dicts.size() - 1), 0};
    }
    void push_string(std::uint64_t n) {
        need(n);
        doc_.strings.emplace_back(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        push(value{kind::string, static_cast<std::int64_t>(doc_.strings.size() - 1), 0});
    }
    // raw-unicode-escape: \uXXXX and \UXXXXXXXX are code points, every other byte is Latin-1.
    void push_text_unicode(const std::string& l) {
        std::string out;
        for (std::size_t i = 0; i < l.size();) {
            const std::size_t digits = l[i] == '\\' && i + 1 < l.size() ? (l[i + 1] == 'u'   ? 4
                                                                           : l[i + 1] == 'U' ? 8
                                                                                             : 0)
                                                                        : 0;
            if (digits == 0) {
                rwkv::append_utf8(out, static_cast<unsigned char>(l[i++]));
                continue;
            }
            std::uint32_t cp = 0;
            const auto r = std::from_chars(l.data() + i + 2, l.data() + std::min(l.size(), i + 2 + digits), cp, 16);
            if (r.ec != std::errc() || r.ptr != l.data() + i + 2 + digits || cp > 0x10FFFF)
                fail("bad \\u escape in UNICODE text");
            rwkv::append_utf8(out, cp);
            i += 2 + digits;
        }
        doc_.strings.push_back(std::move(out));
        push(value{kind::string, static_cast<std::int64_t>(doc_.strings.size() - 1), 0});
    }
    std::vector<value>& list_at_top() {
        const value l = top();
        if (l.type != kind::list) fail("APPEND to a non-list");
        return doc_.sequences[static_cast<std::size_t>(l.i)];
    }
    dict_ref& dict_at_top() {
        const value d = top();
        if (d.type != kind::dict) fail("SETITEM on a non-dict");
        return doc_.dicts[static_cast<std::size_t>(d.i)];
    }

    value resolve(std::string module, std::string name) {
        global_ref g{module, name, callable::type_tag, dtype::f32};
        bool ok = true;
        if (module == "collections" && name == "OrderedDict") {
            g.what = callable::ordered_dict;
        } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
            g.what = callable::rebuild_tensor_v2;
        } else if (module == "torch._utils" && name == "_rebuild_parameter") {
            g.what = callable::rebuild_parameter;
        } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
            g.what = callable::rebuild_parameter_with_state;
        } else if ((module == "torch._utils" || module == "torch._tensor") && name == "_rebuild_from_type_v2") {
            g.what = callable::rebuild_from_type_v2;
        } else if (module == "torch" && storage_dtype(name, g.type)) {
            g.what = callable::storage_class;
        } else if ((module == "torch" && name == "Tensor") || (module == "torch.nn.parameter" && name == "Parameter")) {
            g.what = callable::type_tag;
        } else {
            ok = false;
        }
        if (!ok) fail("unsupported object in checkpoint: " + module + "." + name);
        doc_.globals.push_back(std::move(g));
        return value{kind::global, static_cast<std::int64_t>(doc_.globals.size() - 1), 0};
    }

    const std::vector<value>& tuple_args(value args, std::string_view what, std::size_t lo, std::size_t hi) const {
        if (args.type != kind::tuple) fail(std::string(what) + ": arguments are not a tuple");
        const std::vector<value>& a = doc_.sequences[static_cast<std::size_t>(args.i)];
        if (a.size() < lo || a.size() > hi)
            fail(std::string(what) + ": unexpected number of arguments (" + std::to_string(a.size()) + ")");
        return a;
    }
    std::vector<std::int64_t> int_tuple(value v, std::string_view what) const {
        if (v.type != kind::tuple) fail(std::string(what) + " is not a tuple");
        std::vector<std::int64_t> out;
        for (value x : doc_.sequences[static_cast<std::size_t>(v.i)]) {
            if (x.type != kind::integer) fail(std::string(what) + " holds a non-integer");
            out.push_back(x.i);
        }
        return out;
    }

    // Applies an allowlisted callable. Never recursive: _rebuild_from_type_v2 may only wrap
    // the tensor builders, not itself.
    value call(value fn, value args) {
        if (fn.type != kind::global) fail("REDUCE on a non-callable");
        const global_ref g = doc_.globals[static_cast<std::size_t>(fn.i)];
        switch (g.what) {
            case callable::ordered_dict:
                if (!tuple_args(args, "OrderedDict", 0, 0).empty()) fail("OrderedDict with arguments is not supported");
                return new_dict(true);
            case callable::rebuild_tensor_v2: return rebuild_tensor(args);
            case callable::rebuild_parameter:
            case callable::rebuild_parameter_with_state: {
                const auto& a = tuple_args(args, g.name, 3, 4);
                if (a[0].type != kind::tensor) fail(g.name + ": first argument is not a tensor");
                return a[0];
            }
            case callable::rebuild_from_type_v2: {
                const auto& a = tuple_args(args, g.name, 4, 4);
                if (a[0].type != kind::global) fail(g.name + ": function is not a global");
                const callable inner = doc_.globals[static_cast<std::size_t>(a[0].i)].what;
                const value inner_args = a[2];
                if (inner == callable::rebuild_tensor_v2) return rebuild_tensor(inner_args);
                if (inner == callable::rebuild_parameter || inner == callable::rebuild_parameter_with_state)
                    return call(a[0], inner_args);  // one level at most: see the check above
                fail(g.name + ": unsupported function");
            }
            case callable::storage_class:
            case callable::type_tag: break;
        }
        fail("unsupported object in checkpoint: " + g.module + "." + g.name + " (called)");
    }

    value rebuild_tensor(value args) {
        const auto& a = tuple_args(args, "_rebuild_tensor_v2", 6, 7);
        tensor_ref t;
        if (a[0].type != kind::storage) fail("_rebuild_tensor_v2: first argument is not a storage");
        t.storage = static_cast<std::size_t>(a[0].i);
        if (a[1].type != kind::integer || a[1].i < 0) fail("_rebuild_tensor_v2: bad storage offset");
        t.storage_offset = a[1].i;
        t.shape = int_tuple(a[2], "tensor size");
        t.stride = int_tuple(a[3], "tensor stride");
        if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in length");
        for (std::int64_t d : t.shape)
            if (d < 0) fail("negative tensor dimension");
        if (a[4].type == kind::boolean) t.requires_grad = a[4].i != 0;
        doc_.tensors.push_back(std::move(t));
        return value{kind::tensor, static_cast<std::int64_t>(doc_.tensors.size() - 1), 0};
    }

    // ('storage', torch.<X>Storage, key, location, numel) -> a storage reference.
    value persistent_load(value pid) {
        if (pid.type != kind::tuple) fail("persistent id is not a tuple");
        const auto& a = doc_.sequences[static_cast<std::size_t>(pid.i)];
        if (a.size() != 5 || a[0].type != kind::string || doc_.str(a[0]) != "storage")
            fail("unsupported persistent id (expected a 'storage' tuple)");
        if (a[1].type != kind::global || doc_.globals[static_cast<std::size_t>(a[1].i)].what != callable::storage_class)
            fail("persistent id without a storage class");
        if (a[2].type != kind::string || a[3].type != kind::string) fail("persistent id key/location are not strings");
        if (a[4].type != kind::integer || a[4].i < 0) fail("persistent id with a bad element count");
        storage_ref s;
        s.type = doc_.globals[static_cast<std::size_t>(a[1].i)].type;
        s.key = doc_.str(a[2]);
        s.location = doc_.str(a[3]);
        s.numel = a[4].i;
        doc_.storages.push_back(std::move(s));
        return value{kind::storage, static_cast<std::int64_t>(doc_.storages.size() - 1), 0};
    }

    std::span<const std::byte> in_;
    limits lim_;
    document doc_;
    std::size_t pos_ = 0, op_at_ = 0, values_ = 0;
    std::vector<value> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint32_t, value> memo_;
};

}  // namespace detail

// Runs the pickle in `bytes`; `where` (e.g. "<file>: <archive>/data.pkl") starts every error.
inline document load(std::span<const std::byte> bytes, std::string_view where, const limits& lim = {}) {
    return detail::machine(bytes, where, lim).run();
}

}  // namespace rwkv::io::pickle
