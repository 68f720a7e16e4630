#pragma once
// rwkv::weights_fingerprint — a cheap 64-bit identity of a checkpoint's weights, recorded in
// serialised states so that a state saved from one model is refused by another (even of the
// same shape). It hashes the tensor table (every name, dtype and shape, in name order, so the
// readers' tensor order does not matter) and the first and last 4 KiB of a few tensors that
// differ between any two trainings or seeds; it never reads a whole file. Not a security hash:
// it tells models apart, it does not authenticate them.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "io/tensor.hpp"

namespace rwkv {

namespace detail {

struct fnv1a64 {
    std::uint64_t h = 1469598103934665603ull;
    void add(std::span<const std::byte> b) {
        for (std::byte x : b) h = (h ^ static_cast<std::uint64_t>(x)) * 1099511628211ull;
    }
    void add(std::string_view s) { add(std::as_bytes(std::span(s.data(), s.size()))); }
    void add(std::uint64_t v) {
        std::byte b[8];
        for (int i = 0; i < 8; ++i) b[i] = static_cast<std::byte>(v >> (8 * i));
        add(std::span<const std::byte>(b, 8));
    }
};

}  // namespace detail

// Fingerprint of `file`'s weights as stored (the same weights saved in another dtype give another
// fingerprint; a state then has to be re-made). Never 0, which State uses for "unknown".
// Cost: O(tensors) plus at most 40 KiB of tensor bytes.
inline std::uint64_t weights_fingerprint(const io::tensor_file& file) {
    std::vector<const io::tensor_view*> table;
    table.reserve(file.tensors.size());
    for (const io::tensor_view& t : file.tensors) table.push_back(&t);
    std::sort(table.begin(), table.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
    detail::fnv1a64 h;
    for (const io::tensor_view* t : table) {
        h.add(t->name);
        h.add(std::string_view(dtype_name(t->type)));
        h.add(static_cast<std::uint64_t>(t->shape.size()));
        for (std::int64_t d : t->shape) h.add(static_cast<std::uint64_t>(d));
    }
    // Embedding, output head, the first layer's key projection and the final norm: every training
    // run and every random seed changes each of them.
    constexpr std::size_t edge = 4096;
    for (std::string_view name :
         {"emb.weight", "head.weight", "blocks.0.att.key.weight", "ln_out.weight", "blocks.0.att.time_state"}) {
        const io::tensor_view* t = file.find(name);
        if (!t) continue;
        h.add(name);
        const std::span<const std::byte> d = t->data;
        h.add(d.first(std::min(edge, d.size())));
        if (d.size() > edge) h.add(d.last(std::min(edge, d.size() - edge)));
    }
    return h.h != 0 ? h.h : 1;
}

}  // namespace rwkv
