#pragma once
// From a format-neutral tensor_file (official names) to a Config: recognise the generation from
// tensor names (spec 2.2), read every size from shapes (spec 2.1), and convert tensors to the
// types the layers keep, checking every shape. Knows nothing about file formats.

#include <algorithm>
#include <optional>
#include <charconv>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "io/mapped_file.hpp"
#include "io/tensor.hpp"
#include "weight.hpp"
#include "scalar.hpp"

namespace rwkv::detail {

using io::shape_string;

inline std::vector<std::int64_t> squeezed(const std::vector<std::int64_t>& s) {
    std::vector<std::int64_t> out;
    for (auto d : s)
        if (d != 1) out.push_back(d);
    return out;
}

inline bool has_key_containing(const io::tensor_file& f, std::string_view part) {
    return std::any_of(f.tensors.begin(), f.tensors.end(),
                       [&](const io::tensor_view& t) { return t.name.find(part) != std::string::npos; });
}

// Recognise the generation (spec 2.2); refuse every one the library does not run, by name.
inline Version detect_version(const io::tensor_file& f) {
    const std::string file = f.path.string();
    for (const char* k : {"_strategy", "_rescale_layer", "_version"})
        if (std::find(f.other_keys.begin(), f.other_keys.end(), k) != f.other_keys.end() || f.find(k))
            throw error(file + ": this checkpoint was converted by ChatRWKV for one strategy (key '" + std::string(k) +
                        "'); use the original BlinkDL .pth file");
    if (!f.find("emb.weight"))
        throw error(file + ": missing tensor 'emb.weight' (not an RWKV checkpoint in the official layout)");
    if (has_key_containing(f, "att.r_k") || has_key_containing(f, "att.k_k") || has_key_containing(f, "att.x_r"))
        throw error(file + ": RWKV-7 (x070 \"Goose\") checkpoints are not supported; this library runs x052 and x060");
    if (has_key_containing(f, "time_maa")) return Version::x060;
    if (!has_key_containing(f, "ln_x"))
        throw error(file + ": RWKV-4 checkpoints (no ln_x) are not supported; this library runs x052 and x060");
    if (!has_key_containing(f, "gate.weight"))
        throw error(
            file + ": RWKV-5.0 (x050 preview, no gate) checkpoints are not supported; this library runs x052 and x060");
    const io::tensor_view* decay = f.find("blocks.0.att.time_decay");
    if (!decay) throw error(file + ": missing tensor 'blocks.0.att.time_decay'");
    if (decay->shape.size() == 2 && decay->shape[1] > 1) {
        if (!f.find("blocks.0.att.time_faaaa"))
            throw error(
                file +
                ": RWKV-5 checkpoint with 'time_first' instead of 'time_faaaa' (5.0/5.1 preview) is not supported");
        return Version::x052;
    }
    throw error(file +
                ": RWKV-5.1 (x051, one decay per head) checkpoints are not supported; this library runs x052 and x060");
}

struct consume_tag {};

// Tracks which tensors were used so that unknown ones can be reported, and converts with
// shape checks. Every message names the file and the tensor.
class TensorReader {
public:
    explicit TensorReader(const io::tensor_file& f) : f_(f) {}

    // A reader that consumes `f` (a loader that owns it): once a tensor's values have been copied
    // out (floats(), a converted weight()), its bytes are dropped — the whole pages of a file
    // mapping that hold only this tensor leave the process's resident set (mapped_file::release;
    // read again, they would page in from the file) and a buffer of its own (an in-memory or
    // inflated tensor) is freed. Loading then never holds the whole source next to the copies
    // made from it. Reading a dropped in-memory tensor again is an error.
    TensorReader(io::tensor_file& f, consume_tag) : f_(f), consumed_(&f) {}

    const io::tensor_view& get(const std::string& name) {
        const io::tensor_view& t = f_.at(name);
        if (dropped_.count(name))
            throw error(file() + ": tensor '" + name + "' read again after its buffer was freed (internal error)");
        if (!weights::is_weight_format(t.type))
            throw error(file() + ": tensor '" + name + "' has dtype " + std::string(rwkv::dtype_name(t.type)) +
                        "; supported: " + weight_format_names());
        used_.insert(name);
        return t;
    }

    // Shape check up to size-1 axes (official time_* vectors are [1, 1, C]).
    const io::tensor_view& get(const std::string& name, std::vector<std::int64_t> expected) {
        const io::tensor_view& t = get(name);
        if (squeezed(t.shape) != squeezed(expected))
            throw error(file() + ": tensor '" + name + "' has shape " + shape_string(t.shape) + ", expected " +
                        shape_string(expected));
        return t;
    }

    std::vector<float> floats(const std::string& name, std::vector<std::int64_t> expected) {
        const io::tensor_view& t = get(name, std::move(expected));
        std::vector<float> out(static_cast<std::size_t>(t.numel()));
        widen_to(t, out.data());
        drop(name);
        return out;
    }

    // A weight matrix [rows][cols] in format `target`, or in the file's own format when
    // target is empty (Model<rwkv::stored>): zero-copy into the mapping when the file already
    // holds that format (and the address suits the typed kernels), a converted owned copy
    // otherwise (decoded exactly, then encoded with the target format's reference encoder).
    Weight weight(const std::string& name, std::int64_t rows, std::int64_t cols, std::optional<dtype> target) {
        const io::tensor_view& t = get(name, {rows, cols});
        if (t.shape.size() != 2)
            throw error(file() + ": tensor '" + name + "' must be 2-D, has shape " + shape_string(t.shape));
        const dtype want = target.value_or(t.type);
        const std::size_t align = dtype_block_elems(want) == 1 ? static_cast<std::size_t>(dtype_block_bytes(want)) : 1;
        if (want == t.type && reinterpret_cast<std::uintptr_t>(t.data.data()) % align == 0) {
            Weight w;
            w.type = t.type;
            w.data = t.data.data();
            w.rows = static_cast<int>(rows);
            w.cols = static_cast<int>(cols);
            w.row_bytes = dtype_bytes(t.type, cols, file() + ": tensor '" + name + "' row");
            if (t.owner) w.owner = t.owner;
            else if (!f_.mappings.empty()) w.owner = f_.mappings.front();
            w.mapped = !t.owner;  // a reader's own buffer (inflated, rescaled, ...) is not the file
            return w;
        }
        // Row by row straight into the weight's own buffer: no fp32 copy of the whole matrix (the
        // embedding of a 7B model would take 1 GiB for a moment). The same values as decoding the
        // whole tensor, as every row is a whole number of the file format's blocks.
        if (cols % dtype_block_elems(t.type) != 0) {  // not whole blocks per row: decode it whole
            const std::vector<float> values = floats(name, {rows, cols});
            return Weight::encode(want, values.data(), static_cast<int>(rows), static_cast<int>(cols));
        }
        const std::size_t src_row = dtype_bytes(t.type, cols, file() + ": tensor '" + name + "' row");
        const std::byte* src = t.data.data();
        Weight w = Weight::encode_rows(want, static_cast<int>(rows), static_cast<int>(cols), [&](int r, float* out) {
            weights::decode_row(t.type, src + static_cast<std::size_t>(r) * src_row, out, cols);
        });
        drop(name);
        return w;
    }

    // Every tensor in the file must have been consumed: an unknown name means a layout this
    // library does not understand, and silently ignoring it could give wrong answers.
    void check_all_used() const {
        for (const auto& t : f_.tensors)
            if (!used_.count(t.name))
                throw error(file() + ": unknown tensor '" + t.name + "' " + shape_string(t.shape));
    }

    std::string file() const { return f_.path.string(); }

private:
    // Any weight format, decoded exactly to fp32 by its reference decoder (weights/format.hpp).
    static void widen_to(const io::tensor_view& t, float* out) {
        weights::decode_row(t.type, t.data.data(), out, t.numel());
    }

    // Consuming readers: the tensor's values were copied; let its bytes go (see the constructor).
    void drop(const std::string& name) {
        if (!consumed_) return;
        for (io::tensor_view& t : consumed_->tensors) {
            if (t.name != name) continue;
            if (t.owner) {  // its own buffer: freed once no in-place weight shares it
                t.owner.reset();
                t.data = {};
                dropped_.insert(name);
            } else {
                for (const auto& m : consumed_->mappings) m->release(t.data);
            }
            return;
        }
    }

    const io::tensor_file& f_;
    io::tensor_file* consumed_ = nullptr;
    std::set<std::string> used_, dropped_;
};

// Reads every size off the tensor shapes (spec 2.1) and validates them.
inline Config infer_config(const io::tensor_file& f) {
    const std::string file = f.path.string();
    Config c;
    c.version = detect_version(f);
    auto dims = [&](const std::string& name, std::size_t rank) -> const std::vector<std::int64_t>& {
        const io::tensor_view& t = f.at(name);
        if (t.shape.size() != rank)
            throw error(file + ": tensor '" + name + "' has shape " + shape_string(t.shape) + ", expected " +
                        std::to_string(rank) + " dimensions");
        for (auto d : t.shape)
            if (d <= 0 || d > (1 << 24))
                throw error(file + ": tensor '" + name + "' has implausible shape " + shape_string(t.shape));
        return t.shape;
    };
    const auto& emb = dims("emb.weight", 2);
    c.vocab_size = static_cast<int>(emb[0]);
    c.n_embd = static_cast<int>(emb[1]);
    int max_layer = -1;
    for (const auto& t : f.tensors) {
        if (t.name.rfind("blocks.", 0) != 0) continue;
        const char* b = t.name.data() + 7;
        int l = -1;
        auto [ptr, ec] = std::from_chars(b, t.name.data() + t.name.size(), l);
        if (ec != std::errc() || *ptr != '.' || l < 0 || l > 100000)
            throw error(file + ": unknown tensor '" + t.name + "' (bad block index)");
        max_layer = std::max(max_layer, l);
    }
    if (max_layer < 0) throw error(file + ": no 'blocks.*' tensors");
    c.n_layer = max_layer + 1;
    c.dim_att = static_cast<int>(dims("blocks.0.att.key.weight", 2)[0]);
    c.dim_ffn = static_cast<int>(dims("blocks.0.ffn.key.weight", 2)[0]);
    const auto& u = dims("blocks.0.att.time_faaaa", 2);
    c.n_head = static_cast<int>(u[0]);
    c.head_size = static_cast<int>(u[1]);
    if (c.version == Version::x060) {
        const auto& w1 = dims("blocks.0.att.time_maa_w1", 2);
        if (w1[1] % 5 != 0)
            throw error(file + ": tensor 'blocks.0.att.time_maa_w1' has shape " + shape_string(w1) +
                        ", its second dimension must be 5 x the LoRA rank");
        c.dim_lora_mix = static_cast<int>(w1[1] / 5);
        c.dim_lora_decay = static_cast<int>(dims("blocks.0.att.time_decay_w1", 2)[1]);
    }
    try {
        c.validate();
    } catch (const error& e) {
        throw error(file + ": " + e.what());
    }
    return c;
}

}  // namespace rwkv::detail
