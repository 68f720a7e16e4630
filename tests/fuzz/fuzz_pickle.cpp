// The pickle machine (rwkv::io::pickle::load): any bytes give a document whose every index is in
// range, or an rwkv::error. The walk below follows each container and reference once.
#include <rwkv/io/pickle.hpp>

#include <set>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace {

using namespace rwkv::io::pickle;

// Visits every value reachable from the root once. Iterative with a visited set: documents can
// be cyclic (a dict holding itself through the memo), so a recursive walk could overflow the
// stack (the harness's first version did: regressions/pickle/self-containing-dict).
void check(const document& d, value root) {
    auto in_range = [](std::int64_t i, std::size_t n) {
        if (i < 0 || static_cast<std::size_t>(i) >= n) fuzz::finding("pickle value index out of range");
    };
    std::set<std::pair<int, std::int64_t>> seen;
    std::vector<value> todo{root};
    while (!todo.empty()) {
        const value v = todo.back();
        todo.pop_back();
        switch (v.type) {
            case kind::string: in_range(v.i, d.strings.size()); break;
            case kind::tuple:
            case kind::list:
                in_range(v.i, d.sequences.size());
                if (seen.insert({static_cast<int>(kind::tuple), v.i}).second)
                    for (value x : d.items(v)) todo.push_back(x);
                break;
            case kind::dict:
                in_range(v.i, d.dicts.size());
                if (seen.insert({static_cast<int>(kind::dict), v.i}).second)
                    for (const auto& [k, x] : d.dict(v).items) todo.push_back(k), todo.push_back(x);
                break;
            case kind::global: in_range(v.i, d.globals.size()); break;
            case kind::storage: in_range(v.i, d.storages.size()); break;
            case kind::tensor: {
                in_range(v.i, d.tensors.size());
                const tensor_ref& t = d.tensor(v);
                in_range(static_cast<std::int64_t>(t.storage), d.storages.size());
                if (t.shape.size() != t.stride.size()) fuzz::finding("tensor shape/stride ranks differ");
                break;
            }
            default: break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        // A smaller value cap than the default keeps every execution fast.
        limits lim;
        lim.max_values = 1u << 16;
        const document d = load(fuzz::bytes_of(data, size), "fuzz.pkl", lim);
        check(d, d.root);
    } catch (const rwkv::error&) {}
    return 0;
}
