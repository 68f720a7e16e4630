#pragma once
// Hand assembly of pickle byte streams (the torch.save subset), so tests can build valid,
// unusual and hostile checkpoints opcode by opcode.

#include <cstdint>
#include <string>
#include <vector>

#include "byte_string.hpp"

namespace test_support {

struct pickle_builder {
    std::string b;
    pickle_builder& op(unsigned c) { return b.push_back(static_cast<char>(c)), *this; }
    pickle_builder& raw(const std::string& s) { return b += s, *this; }
    pickle_builder& le(std::uint64_t v, int n) { return put_le(b, v, n), *this; }
    pickle_builder& proto(unsigned v = 2) { return op(0x80).op(v); }
    pickle_builder& global(const std::string& m, const std::string& n) { return op('c').raw(m + "\n" + n + "\n"); }
    pickle_builder& str(const std::string& s) { return op('X').le(s.size(), 4).raw(s); }
    pickle_builder& short_str(const std::string& s) { return op(0x8c).le(s.size(), 1).raw(s); }
    pickle_builder& str8(const std::string& s) { return op(0x8d).le(s.size(), 8).raw(s); }
    pickle_builder& i1(unsigned v) { return op('K').le(v, 1); }
    pickle_builder& i2(unsigned v) { return op('M').le(v, 2); }
    pickle_builder& i4(std::int32_t v) { return op('J').le(static_cast<std::uint32_t>(v), 4); }
    pickle_builder& long1(const std::string& le_bytes) { return op(0x8a).le(le_bytes.size(), 1).raw(le_bytes); }
    pickle_builder& put(unsigned k) { return op('q').le(k, 1); }
    pickle_builder& get(unsigned k) { return op('h').le(k, 1); }
    pickle_builder& mark() { return op('('); }
    pickle_builder& tuple() { return op('t'); }
    pickle_builder& empty_tuple() { return op(')'); }
    pickle_builder& empty_dict() { return op('}'); }
    pickle_builder& setitems() { return op('u'); }
    pickle_builder& reduce() { return op('R'); }
    pickle_builder& stop() { return op('.'); }
    pickle_builder& ordered_dict() { return global("collections", "OrderedDict").empty_tuple().reduce(); }
    // (i4, i4, ...): a shape or stride. BININT is what torch.save writes for these.
    pickle_builder& ints(const std::vector<std::int64_t>& v) {
        mark();
        for (std::int64_t x : v) i4(static_cast<std::int32_t>(x));
        return tuple();
    }
    // One tensor value: _rebuild_tensor_v2(persid(storage), offset, shape, stride, False, {}).
    pickle_builder& tensor(const std::string& storage_class, const std::string& key, std::int64_t numel,
                           std::int64_t offset, const std::vector<std::int64_t>& shape,
                           const std::vector<std::int64_t>& stride) {
        global("torch._utils", "_rebuild_tensor_v2").mark();
        mark().str("storage").global("torch", storage_class).str(key).str("cpu").i4(static_cast<std::int32_t>(numel));
        tuple().op('Q').i4(static_cast<std::int32_t>(offset));
        ints(shape).ints(stride);
        return op(0x89).ordered_dict().tuple().reduce();
    }
};

}  // namespace test_support
