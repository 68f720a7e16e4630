// The pickle machine (rwkv::io::pickle::load): any bytes give a document whose every index is in
// range, or an rwkv::error. The walk below follows each container and reference once.
#include <rwkv/io/pickle.hpp>

#include "fuzz_support.hpp"

namespace {

using namespace rwkv::io::pickle;

void check(const document& d, value v, std::size_t& budget) {
    if (budget == 0) return;  // shared containers make the walk a DAG: bound the work
    --budget;
    auto in_range = [](std::int64_t i, std::size_t n) {
        if (i < 0 || static_cast<std::size_t>(i) >= n) fuzz::finding("pickle value index out of range");
    };
    switch (v.type) {
        case kind::string: in_range(v.i, d.strings.size()); break;
        case kind::tuple:
        case kind::list:
            in_range(v.i, d.sequences.size());
            for (value x : d.items(v)) check(d, x, budget);
            break;
        case kind::dict:
            in_range(v.i, d.dicts.size());
            for (const auto& [k, x] : d.dict(v).items) check(d, k, budget), check(d, x, budget);
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        // A smaller value cap than the default keeps every execution fast.
        limits lim;
        lim.max_values = 1u << 16;
        const document d = load(fuzz::bytes_of(data, size), "fuzz.pkl", lim);
        std::size_t budget = 1u << 16;
        check(d, d.root, budget);
    } catch (const rwkv::error&) {
    }
    return 0;
}
