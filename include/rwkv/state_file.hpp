#pragma once
// Initial states from files: rwkv state files (State::save) and the `.pth` files that state tuning
// produces (RWKV-LM --train_type state; spec 3.4), which hold only the learned WKV state of each
// layer, `blocks.N.att.time_state` [H, N, N]. Such a file cannot be loaded as a model; it is
// loaded into a State of the model it was tuned for.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "error.hpp"
#include "io/pth.hpp"
#include "io/tensor.hpp"
#include "state.hpp"
#include "weights/format.hpp"

namespace rwkv {

// Sets `s` to the initial state in `file` (its tensors exactly blocks.0..L-1.att.time_state,
// f32/f16/bf16, each [H, N, N] up to size-1 axes, stored [head][value j][key i] as RWKV-LM trains
// them): WKV matrices from the file, token-shift vectors zero. `s` keeps its shape and model
// fingerprint. Throws rwkv::error naming the file and tensor for any other tensor, a missing or
// repeated layer, or a shape or dtype that does not fit `s`; `s` is unchanged then.
inline void load_time_state(State& s, const io::tensor_file& file) {
    const Config& c = s.config();
    const std::string where = file.path.string();
    const auto H = static_cast<std::size_t>(c.n_head), N = static_cast<std::size_t>(c.head_size);
    if (file.tensors.empty()) throw error(where + ": no tensors (expected blocks.N.att.time_state)");
    std::vector<const io::tensor_view*> layer(static_cast<std::size_t>(c.n_layer), nullptr);
    for (const io::tensor_view& t : file.tensors) {
        // blocks.<l>.att.time_state, nothing else.
        constexpr std::string_view head = "blocks.", tail = ".att.time_state";
        int l = -1;
        const std::string_view name = t.name;
        bool ok = name.starts_with(head) && name.ends_with(tail) && name.size() > head.size() + tail.size();
        if (ok) {
            const std::string_view digits = name.substr(head.size(), name.size() - head.size() - tail.size());
            const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), l);
            ok = r.ec == std::errc() && r.ptr == digits.data() + digits.size() && l >= 0;
        }
        if (!ok)
            throw error(where + ": not a state-only file: tensor '" + t.name +
                        "' is not blocks.N.att.time_state (a model checkpoint is loaded as the model)");
        if (l >= c.n_layer)
            throw error(where + ": tensor '" + t.name + "' is for layer " + std::to_string(l) + " but the model has " +
                        std::to_string(c.n_layer) + " layers");
        if (layer[static_cast<std::size_t>(l)]) throw error(where + ": duplicate tensor '" + t.name + "'");
        auto squeeze = [](const std::vector<std::int64_t>& v) {
            std::vector<std::int64_t> out;
            for (std::int64_t d : v)
                if (d != 1) out.push_back(d);
            return out;
        };
        const std::vector<std::int64_t> want = {static_cast<std::int64_t>(H), static_cast<std::int64_t>(N),
                                                static_cast<std::int64_t>(N)};
        if (squeeze(t.shape) != squeeze(want))
            throw error(where + ": tensor '" + t.name + "' has shape " + io::shape_string(t.shape) + ", expected " +
                        io::shape_string(want) + " (n_head, head_size, head_size)");
        if (!weights::is_weight_format(t.type) || dtype_block_elems(t.type) != 1)
            throw error(where + ": tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) +
                        "; a time_state must be f32, f16 or bf16");
        layer[static_cast<std::size_t>(l)] = &t;
    }
    for (std::size_t l = 0; l < layer.size(); ++l)
        if (!layer[l])
            throw error(where + ": missing tensor 'blocks." + std::to_string(l) + ".att.time_state' (the model has " +
                        std::to_string(c.n_layer) + " layers)");

    // All checked: now write, so a refused file leaves `s` as it was.
    s.reset();
    std::vector<float> tmp(H * N * N);
    for (int l = 0; l < c.n_layer; ++l) {
        const io::tensor_view& t = *layer[static_cast<std::size_t>(l)];
        weights::decode_row(t.type, t.data.data(), tmp.data(), static_cast<std::int64_t>(tmp.size()));
        // Stored [h][value j][key i]; the state is [h][key i][value j].
        float* dst = s.wkv(l).data();
        for (std::size_t h = 0; h < H; ++h)
            for (std::size_t j = 0; j < N; ++j)
                for (std::size_t i = 0; i < N; ++i) dst[(h * N + i) * N + j] = tmp[(h * N + j) * N + i];
    }
}

// Loads an initial state from `path` into `s`, whichever kind of file it is: a PyTorch zip
// (a state-tuning `.pth`, see load_time_state) or an rwkv state file (State::load). Errors as
// those functions throw them.
inline void load_state_file(State& s, const std::filesystem::path& path) {
    char magic[2] = {};
    std::ifstream(path, std::ios::binary).read(magic, 2);
    if (magic[0] == 'P' && magic[1] == 'K') return load_time_state(s, io::load_pth(path));
    s.load(path);
}

}  // namespace rwkv
