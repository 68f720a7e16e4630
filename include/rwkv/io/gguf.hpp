#pragma once
// GGUF v3 (llama.cpp; spec 8.3) and the RWKV architectures in it. read_gguf() parses any GGUF into
// its metadata and tensors (GGUF names, PyTorch-order shapes, zero-copy spans); load_gguf()
// turns an `rwkv6` file (llama.cpp's) or an `rwkv5` file (this library's names for x052,
// docs/gguf-rwkv5.md) into official names and layouts (spec 3): fused lerp vectors split,
// transposed LoRA matrices transposed back, x052's flat decay given its [H, N] shape back, and
// the pre-divided `time_mix_output` / `channel_mix_value` multiplied back by
// 2^(i div rescale_every_n_layers) (spec 4.11), so the model runs the official equations
// unchanged. Tensors whose bytes are usable as stored stay zero-copy and keep their ggml type
// (quantized stays quantized).

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "bytes.hpp"
#include "mapped_file.hpp"
#include "tensor.hpp"
#include "transform.hpp"
#include "../weights/format.hpp"

namespace rwkv::io {

// GGUF metadata value types (spec 8.3).
enum class gguf_type : std::uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12,
};

// One metadata value. Scalars fill the member of their kind (integers and bools: `i` and/or `u`;
// floats: `f`); arrays fill `strings`, `ints` (integers and bools) or `reals` with `count`
// elements of `elem`. Arrays of arrays are parsed (and bounds-checked) but not kept.
struct gguf_value {
    gguf_type type = gguf_type::u8;
    gguf_type elem = gguf_type::u8;  // arrays only
    std::uint64_t u = 0;
    std::int64_t i = 0;
    double f = 0.0;
    std::string s;
    std::uint64_t count = 0;  // arrays only
    std::vector<std::string> strings;
    std::vector<std::int64_t> ints;
    std::vector<double> reals;

    bool is_integer() const {
        return type == gguf_type::u8 || type == gguf_type::i8 || type == gguf_type::u16 || type == gguf_type::i16 ||
               type == gguf_type::u32 || type == gguf_type::i32 || type == gguf_type::u64 || type == gguf_type::i64 ||
               type == gguf_type::boolean;
    }
};

// A parsed GGUF file: metadata and tensors under their GGUF names. Tensor shapes are in
// PyTorch order (ggml's ne reversed: a [out, in] weight has ne = {in, out}).
struct gguf_file {
    std::filesystem::path path;
    std::uint32_t version = 0;
    std::size_t alignment = 32;
    std::shared_ptr<const mapped_file> file;
    std::map<std::string, gguf_value> kv;
    std::vector<tensor_view> tensors;

    const gguf_value* find(std::string_view key) const {
        auto it = kv.find(std::string(key));
        return it == kv.end() ? nullptr : &it->second;
    }
    std::string string_or(std::string_view key, std::string fallback) const {
        const gguf_value* v = find(key);
        return v && v->type == gguf_type::string ? v->s : fallback;
    }
    // An integer key; nullopt when absent. Throws when present with a non-integer type.
    std::optional<std::int64_t> integer(std::string_view key) const {
        const gguf_value* v = find(key);
        if (!v) return std::nullopt;
        if (!v->is_integer())
            throw rwkv::error(path.string() + ": metadata '" + std::string(key) + "' should be an integer");
        return v->i;
    }
};

namespace detail {

inline float bit_cast_f32(std::uint32_t u) { return std::bit_cast<float>(u); }
inline double bit_cast_f64(std::uint64_t u) { return std::bit_cast<double>(u); }

// ggml type names for the ids this library does not run, so refusals can name them.
inline std::string ggml_type_name(std::uint32_t id) {
    static const std::pair<std::uint32_t, const char*> names[] = {{4, "Q4_2 (retired)"},
                                                                  {5, "Q4_3 (retired)"},
                                                                  {9, "Q8_1"},
                                                                  {15, "Q8_K"},
                                                                  {16, "IQ2_XXS"},
                                                                  {17, "IQ2_XS"},
                                                                  {18, "IQ3_XXS"},
                                                                  {19, "IQ1_S"},
                                                                  {21, "IQ3_S"},
                                                                  {22, "IQ2_S"},
                                                                  {23, "IQ4_XS"},
                                                                  {29, "IQ1_M"},
                                                                  {31, "Q4_0_4_4 (retired)"},
                                                                  {32, "Q4_0_4_8 (retired)"},
                                                                  {33, "Q4_0_8_8 (retired)"},
                                                                  {34, "TQ1_0"},
                                                                  {35, "TQ2_0"},
                                                                  {36, "IQ4_NL_4_4 (retired)"},
                                                                  {37, "IQ4_NL_4_8 (retired)"},
                                                                  {38, "IQ4_NL_8_8 (retired)"},
                                                                  {39, "MXFP4"}};
    for (const auto& [i, n] : names)
        if (i == id) return n;
    return "ggml type " + std::to_string(id);
}

// ggml type id → rwkv::dtype (every weight format by its ggml_type, plus ggml's integer and
// f64 types so they can be described); false for anything else.
inline bool dtype_from_ggml(std::uint32_t id, dtype& out) {
#define RWKV_GGML_ID_CASE(name)                                       \
    if (id == static_cast<std::uint32_t>(weights::name::ggml_type)) { \
        out = dtype::name;                                            \
        return true;                                                  \
    }
    RWKV_WEIGHT_FORMATS(RWKV_GGML_ID_CASE)
#undef RWKV_GGML_ID_CASE
    switch (id) {
        case 24: out = dtype::i8; return true;
        case 25: out = dtype::i16; return true;
        case 26: out = dtype::i32; return true;
        case 27: out = dtype::i64; return true;
        case 28: out = dtype::f64; return true;
        default: return false;
    }
}

inline std::size_t gguf_scalar_size(gguf_type t) {
    switch (t) {
        case gguf_type::u8:
        case gguf_type::i8:
        case gguf_type::boolean: return 1;
        case gguf_type::u16:
        case gguf_type::i16: return 2;
        case gguf_type::u32:
        case gguf_type::i32:
        case gguf_type::f32: return 4;
        case gguf_type::u64:
        case gguf_type::i64:
        case gguf_type::f64: return 8;
        default: return 0;
    }
}

inline std::string_view gguf_string(cursor& c, std::string_view what) {
    const std::uint64_t n = c.read<std::uint64_t>(what);
    return c.chars(n, what);
}

// One scalar of type t into v (v.type already set by the caller for scalars).
inline void gguf_scalar(cursor& c, gguf_type t, gguf_value& v, const std::string& key) {
    const std::string what = "value of '" + key + "'";
    switch (t) {
        case gguf_type::u8:
            v.u = c.read<std::uint8_t>(what);
            v.i = static_cast<std::int64_t>(v.u);
            break;
        case gguf_type::i8: v.i = static_cast<std::int8_t>(c.read<std::uint8_t>(what)); break;
        case gguf_type::u16:
            v.u = c.read<std::uint16_t>(what);
            v.i = static_cast<std::int64_t>(v.u);
            break;
        case gguf_type::i16: v.i = static_cast<std::int16_t>(c.read<std::uint16_t>(what)); break;
        case gguf_type::u32:
            v.u = c.read<std::uint32_t>(what);
            v.i = static_cast<std::int64_t>(v.u);
            break;
        case gguf_type::i32: v.i = static_cast<std::int32_t>(c.read<std::uint32_t>(what)); break;
        case gguf_type::u64:
            v.u = c.read<std::uint64_t>(what);
            v.i = v.u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(v.u);
            break;
        case gguf_type::i64: v.i = static_cast<std::int64_t>(c.read<std::uint64_t>(what)); break;
        case gguf_type::f32: v.f = bit_cast_f32(c.read<std::uint32_t>(what)); break;
        case gguf_type::f64: v.f = bit_cast_f64(c.read<std::uint64_t>(what)); break;
        case gguf_type::boolean: {
            const auto b = c.read<std::uint8_t>(what);
            if (b > 1) c.fail("metadata '" + key + "': bool value " + std::to_string(b) + " is neither 0 nor 1");
            v.i = b;
            v.u = b;
            break;
        }
        case gguf_type::string: v.s = std::string(gguf_string(c, what)); break;
        default:
            c.fail("metadata '" + key + "' has unknown value type " + std::to_string(static_cast<std::uint32_t>(t)));
    }
    if (t == gguf_type::i8 || t == gguf_type::i16 || t == gguf_type::i32 || t == gguf_type::i64)
        v.u = static_cast<std::uint64_t>(v.i);
}

inline bool gguf_known_type(std::uint32_t t) { return t <= 12; }

inline void gguf_read_value(cursor& c, gguf_type t, gguf_value& v, const std::string& key, int depth) {
    v.type = t;
    if (t != gguf_type::array) {
        gguf_scalar(c, t, v, key);
        return;
    }
    if (depth > 4) c.fail("metadata '" + key + "': arrays nested too deeply");
    const std::uint32_t et = c.read<std::uint32_t>("array type of '" + key + "'");
    if (!gguf_known_type(et)) c.fail("metadata '" + key + "' has unknown array element type " + std::to_string(et));
    v.elem = static_cast<gguf_type>(et);
    v.count = c.read<std::uint64_t>("array length of '" + key + "'");
    // Every element needs at least this many bytes: a count the file cannot hold is corrupt
    // (and must not drive an allocation).
    const std::size_t min_size = v.elem == gguf_type::string  ? 8
                                 : v.elem == gguf_type::array ? 12
                                                              : gguf_scalar_size(v.elem);
    std::uint64_t need = 0;
    if (!mul_within(v.count, min_size, c.remaining(), need))
        c.fail("truncated: metadata array '" + key + "' claims " + std::to_string(v.count) +
               " elements, more than the file holds");
    if (v.elem == gguf_type::string) v.strings.reserve(static_cast<std::size_t>(v.count));
    else if (v.elem == gguf_type::f32 || v.elem == gguf_type::f64) v.reals.reserve(static_cast<std::size_t>(v.count));
    else if (v.elem != gguf_type::array) v.ints.reserve(static_cast<std::size_t>(v.count));
    gguf_value e;
    for (std::uint64_t k = 0; k < v.count; ++k) {
        if (v.elem == gguf_type::array) {
            gguf_value nested;
            gguf_read_value(c, gguf_type::array, nested, key, depth + 1);
            continue;
        }
        gguf_scalar(c, v.elem, e, key);
        if (v.elem == gguf_type::string) v.strings.push_back(std::move(e.s));
        else if (v.elem == gguf_type::f32 || v.elem == gguf_type::f64) v.reals.push_back(e.f);
        else v.ints.push_back(e.i);
    }
}

}  // namespace detail

// Parses a GGUF file (v2 or v3, any architecture). Throws rwkv::error naming the file for a bad
// magic or version, any truncation (header, metadata, tensor infos, data), duplicate keys or
// tensors, a bad alignment, a tensor type this library cannot decode (named, with the list of
// supported ones), a byte size that disagrees with type and shape, and overlapping tensors.
inline gguf_file read_gguf(const std::filesystem::path& path) {
    gguf_file g;
    g.path = path;
    g.file = std::make_shared<const mapped_file>(path);
    detail::cursor c(g.file->bytes(), path.string());
    const auto magic = c.read<std::uint32_t>("GGUF magic");
    if (magic != 0x46554747u) c.fail("not a GGUF file (bad magic)");
    g.version = c.read<std::uint32_t>("GGUF version");
    if (g.version != 2 && g.version != 3) {
        if (g.version == 1)
            c.fail("GGUF version 1 (32-bit counts) is not supported; re-convert with a newer llama.cpp");
        if (g.version == 0x03000000u || g.version == 0x02000000u) c.fail("big-endian GGUF files are not supported");
        c.fail("unsupported GGUF version " + std::to_string(g.version) + " (supported: 2, 3)");
    }
    const std::uint64_t n_tensors = c.read<std::uint64_t>("tensor count");
    const std::uint64_t n_kv = c.read<std::uint64_t>("metadata count");
    // Each key-value pair needs >= 13 bytes and each tensor info >= 28: reject impossible counts early.
    if (n_kv > c.remaining() / 13) c.fail("truncated: " + std::to_string(n_kv) + " metadata entries cannot fit");
    if (n_tensors > c.remaining() / 28) c.fail("truncated: " + std::to_string(n_tensors) + " tensor infos cannot fit");
    for (std::uint64_t k = 0; k < n_kv; ++k) {
        std::string key(detail::gguf_string(c, "metadata key"));
        const std::uint32_t t = c.read<std::uint32_t>("type of '" + key + "'");
        if (!detail::gguf_known_type(t)) c.fail("metadata '" + key + "' has unknown value type " + std::to_string(t));
        gguf_value v;
        detail::gguf_read_value(c, static_cast<gguf_type>(t), v, key, 0);
        if (!g.kv.emplace(key, std::move(v)).second) c.fail("duplicate metadata key '" + key + "'");
    }
    if (const gguf_value* a = g.find("general.alignment")) {
        if (!a->is_integer() || a->u == 0 || a->u > (1u << 20) || (a->u & (a->u - 1)) != 0)
            c.fail("general.alignment must be a power of two, is " + std::to_string(a->u));
        g.alignment = static_cast<std::size_t>(a->u);
    }
    struct info {
        std::string name;
        dtype type;
        std::vector<std::int64_t> shape;
        std::uint64_t offset;
        std::size_t bytes;
    };
    std::vector<info> infos;
    std::set<std::string> names;
    for (std::uint64_t k = 0; k < n_tensors; ++k) {
        info ti;
        ti.name = std::string(detail::gguf_string(c, "tensor name"));
        const std::uint32_t nd = c.read<std::uint32_t>("dimension count of '" + ti.name + "'");
        if (nd == 0 || nd > 4)
            c.fail("tensor '" + ti.name + "' has " + std::to_string(nd) + " dimensions (1..4 allowed)");
        std::vector<std::int64_t> ne(nd);
        for (auto& d : ne) {
            const std::uint64_t u = c.read<std::uint64_t>("shape of '" + ti.name + "'");
            if (u > (std::uint64_t{1} << 48))
                c.fail("tensor '" + ti.name + "' has an impossible dimension " + std::to_string(u));
            d = static_cast<std::int64_t>(u);
        }
        ti.shape.assign(ne.rbegin(), ne.rend());
        const std::uint32_t t = c.read<std::uint32_t>("type of '" + ti.name + "'");
        if (!detail::dtype_from_ggml(t, ti.type))
            c.fail("tensor '" + ti.name + "' is " + detail::ggml_type_name(t) +
                   "; supported: " + weight_format_names());
        ti.offset = c.read<std::uint64_t>("offset of '" + ti.name + "'");
        ti.bytes = detail::tensor_bytes(ti.type, ti.shape, path.string(), ti.name);
        if (!names.insert(ti.name).second) c.fail("duplicate tensor '" + ti.name + "'");
        if (ti.offset % g.alignment != 0)
            c.fail("tensor '" + ti.name + "' data offset " + std::to_string(ti.offset) +
                   " is not a multiple of the alignment " + std::to_string(g.alignment));
        infos.push_back(std::move(ti));
    }
    // The data section starts at the next multiple of the alignment.
    const std::size_t data_start = (c.pos() + g.alignment - 1) / g.alignment * g.alignment;
    if (data_start > g.file->size() && !infos.empty())
        c.fail("truncated: the data section would start at " + std::to_string(data_start) +
               ", past the end of the file");
    const std::size_t data_size = data_start <= g.file->size() ? g.file->size() - data_start : 0;
    const std::span<const std::byte> data =
        data_start <= g.file->size() ? g.file->bytes().subspan(data_start) : std::span<const std::byte>{};
    for (const info& ti : infos)
        if (ti.offset > data_size || ti.bytes > data_size - ti.offset)
            c.fail("truncated: tensor '" + ti.name + "' (" + std::string(dtype_name(ti.type)) + " " +
                   detail::dims_string(ti.shape) + ", " + std::to_string(ti.bytes) + " bytes at data offset " +
                   std::to_string(ti.offset) + ") runs past the end of the file");
    std::vector<const info*> sorted;
    for (const info& ti : infos) sorted.push_back(&ti);
    std::sort(sorted.begin(), sorted.end(), [](const info* a, const info* b) { return a->offset < b->offset; });
    for (std::size_t k = 1; k < sorted.size(); ++k)
        if (sorted[k]->offset < sorted[k - 1]->offset + sorted[k - 1]->bytes)
            c.fail("tensors '" + sorted[k - 1]->name + "' and '" + sorted[k]->name + "' overlap");
    for (info& ti : infos) {
        tensor_view tv;
        tv.name = std::move(ti.name);
        tv.type = ti.type;
        tv.shape = std::move(ti.shape);
        tv.data = data.subspan(static_cast<std::size_t>(ti.offset), ti.bytes);
        g.tensors.push_back(std::move(tv));
    }
    return g;
}

namespace detail {

// What the per-tensor mapping needs to know about the file.
struct gguf_rwkv_arch {
    bool x052 = false;           // `rwkv5` (docs/gguf-rwkv5.md) rather than `rwkv6` (spec 8.3)
    int rescale_every = 0;       // <arch>.rescale_every_n_layers (0: nothing was divided)
    std::int64_t head_size = 0;  // <arch>.wkv.head_size (x052: the decay's [H, N] shape)
};

// Official tensors of one `rwkv6` (spec 8.3 table) or `rwkv5` (docs/gguf-rwkv5.md) GGUF tensor,
// appended to `out`. Throws rwkv::error naming the tensor when its shape cannot be mapped, or
// when an `rwkv5` file holds a tensor only RWKV-6 has.
inline void gguf_rwkv_tensor(const tensor_view& t, const gguf_rwkv_arch& a, const std::string& where,
                             std::vector<tensor_view>& out) {
    const std::string& n = t.name;
    auto vec = [&](const std::string& name) { out.push_back(reshaped(t, name, {1, 1, t.numel()})); };
    auto same = [&](const std::string& name) { out.push_back(reshaped(t, name, t.shape)); };
    auto want_rank = [&](std::size_t r) {
        if (t.shape.size() != r)
            throw rwkv::error(where + ": tensor '" + n + "' has shape " + dims_string(t.shape) + ", expected " +
                              std::to_string(r) + " dimensions");
    };
    static const std::pair<std::string_view, std::string_view> top[] = {
        {"token_embd.weight", "emb.weight"},           {"token_embd_norm.weight", "blocks.0.ln0.weight"},
        {"token_embd_norm.bias", "blocks.0.ln0.bias"}, {"output_norm.weight", "ln_out.weight"},
        {"output_norm.bias", "ln_out.bias"},           {"output.weight", "head.weight"}};
    for (const auto& [from, to] : top)
        if (n == from) return same(std::string(to));
    int layer = -1;
    std::size_t dot = std::string::npos;
    if (n.rfind("blk.", 0) == 0) {
        dot = n.find('.', 4);
        const std::string idx = dot == std::string::npos ? "" : n.substr(4, dot - 4);
        if (!idx.empty() && idx.size() < 7 &&
            std::all_of(idx.begin(), idx.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
            layer = std::stoi(idx);
    }
    if (layer < 0) return same(n);  // unknown: kept under its GGUF name for the loader to report
    const std::string rest = n.substr(dot + 1), p = "blocks." + std::to_string(layer) + ".";
    static const std::pair<std::string_view, std::string_view> plain[] = {
        {"attn_norm.weight", "ln1.weight"},
        {"attn_norm.bias", "ln1.bias"},
        {"attn_norm_2.weight", "ln2.weight"},
        {"attn_norm_2.bias", "ln2.bias"},
        {"time_mix_first.weight", "att.time_faaaa"},
        {"time_mix_receptance.weight", "att.receptance.weight"},
        {"time_mix_key.weight", "att.key.weight"},
        {"time_mix_value.weight", "att.value.weight"},
        {"time_mix_gate.weight", "att.gate.weight"},
        {"time_mix_ln.weight", "att.ln_x.weight"},
        {"time_mix_ln.bias", "att.ln_x.bias"},
        {"channel_mix_key.weight", "ffn.key.weight"},
        {"channel_mix_receptance.weight", "ffn.receptance.weight"}};
    for (const auto& [from, to] : plain)
        if (rest == from) return same(p + std::string(to));
    if (a.x052) {
        // x052's static mix vectors share llama.cpp's lerp names (they weigh the current token,
        // spec 4.3); its decay is stored flat {A} as raw d and gets its official [H, N] back.
        static const std::pair<std::string_view, std::string_view> mix5[] = {
            {"time_mix_lerp_k.weight", "att.time_mix_k"},    {"time_mix_lerp_v.weight", "att.time_mix_v"},
            {"time_mix_lerp_r.weight", "att.time_mix_r"},    {"time_mix_lerp_g.weight", "att.time_mix_g"},
            {"channel_mix_lerp_k.weight", "ffn.time_mix_k"}, {"channel_mix_lerp_r.weight", "ffn.time_mix_r"}};
        for (const auto& [from, to] : mix5)
            if (rest == from) return vec(p + std::string(to));
        if (rest == "time_mix_decay.weight") {
            if (t.shape.size() != 1 || a.head_size <= 0 || t.shape[0] % a.head_size != 0)
                throw rwkv::error(where + ": tensor '" + n + "' has shape " + dims_string(t.shape) +
                                  "; an rwkv5 file stores the decay as one dimension of A = H x " +
                                  std::to_string(a.head_size) + " (rwkv5.wkv.head_size) values");
            return out.push_back(reshaped(t, p + "att.time_decay", {t.shape[0] / a.head_size, a.head_size}));
        }
        static const std::string_view x060_only[] = {
            "time_mix_lerp_x.weight", "time_mix_lerp_w.weight",   "time_mix_lerp_fused.weight", "time_mix_w1.weight",
            "time_mix_w2.weight",     "time_mix_decay_w1.weight", "time_mix_decay_w2.weight"};
        for (std::string_view x : x060_only)
            if (rest == x)
                throw rwkv::error(where + ": tensor '" + n +
                                  "' is an RWKV-6 tensor, but the file says general.architecture = 'rwkv5' (x052)");
    }
    static const std::pair<std::string_view, std::string_view> vectors[] = {
        {"time_mix_lerp_x.weight", "att.time_maa_x"},   {"time_mix_lerp_w.weight", "att.time_maa_w"},
        {"time_mix_lerp_k.weight", "att.time_maa_k"},   {"time_mix_lerp_v.weight", "att.time_maa_v"},
        {"time_mix_lerp_r.weight", "att.time_maa_r"},   {"time_mix_lerp_g.weight", "att.time_maa_g"},
        {"time_mix_decay.weight", "att.time_decay"},    {"channel_mix_lerp_k.weight", "ffn.time_maa_k"},
        {"channel_mix_lerp_r.weight", "ffn.time_maa_r"}};
    for (const auto& [from, to] : vectors)
        if (rest == from) return vec(p + std::string(to));
    if (rest == "time_mix_lerp_fused.weight") {
        // (5, 1, 1, C): the five static mix vectors in slot order w, k, v, r, g.
        const std::int64_t total = t.numel();
        if (total % 5 != 0)
            throw rwkv::error(where + ": tensor '" + n + "' has shape " + dims_string(t.shape) +
                              "; expected 5 x C values");
        const std::int64_t C = total / 5;
        const std::size_t bytes = tensor_bytes(t.type, {C}, where, n);
        const char* slots[5] = {"w", "k", "v", "r", "g"};
        for (int s = 0; s < 5; ++s) {
            tensor_view v = reshaped(t, p + "att.time_maa_" + slots[s], {1, 1, C});
            v.data = t.data.subspan(static_cast<std::size_t>(s) * bytes, bytes);
            out.push_back(std::move(v));
        }
        return;
    }
    if (rest == "time_mix_w1.weight" || rest == "time_mix_decay_w1.weight" || rest == "time_mix_decay_w2.weight") {
        // Stored transposed: (5·Dm, C) / (Dw, C) / (A, Dw) → official (C, 5·Dm) / (C, Dw) / (Dw, A).
        want_rank(2);
        const std::string to = rest == "time_mix_w1.weight"         ? "att.time_maa_w1"
                               : rest == "time_mix_decay_w1.weight" ? "att.time_decay_w1"
                                                                    : "att.time_decay_w2";
        out.push_back(transposed_f32(t, p + to, where));
        return;
    }
    if (rest == "time_mix_w2.weight") {
        want_rank(3);  // (5, C, Dm) → official (5, Dm, C)
        out.push_back(transposed_f32(t, p + "att.time_maa_w2", where));
        return;
    }
    if (rest == "time_mix_output.weight" || rest == "channel_mix_value.weight") {
        // Stored divided by 2^(i div R) (spec 4.11); multiplied back exactly.
        const int k = a.rescale_every > 0 ? layer / a.rescale_every : 0;
        tensor_view v = scaled_pow2(t, k, where);
        v.name = p + (rest == "time_mix_output.weight" ? "att.output.weight" : "ffn.value.weight");
        out.push_back(std::move(v));
        return;
    }
    same(n);  // unknown per-block tensor: kept for the loader to report by name
}

// " (Q8_0)" for llama.cpp's general.file_type values (llama_ftype: what most tensors are), "" for
// the ones not listed.
inline std::string llama_ftype_name(std::int64_t ft) {
    static const std::pair<std::int64_t, const char*> names[] = {
        {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
        {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
        {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"}};
    for (const auto& [id, n] : names)
        if (id == ft) return std::string(" (") + n + ")";
    return "";
}

}  // namespace detail

// An `rwkv6` or `rwkv5` GGUF file in official names and layouts (spec 8.3 / docs/gguf-rwkv5.md →
// spec 3). Throws rwkv::error for anything read_gguf() refuses, for another architecture (named),
// for missing or inconsistent metadata (named: an `rwkv5` file needs block_count,
// embedding_length, wkv.head_size and rescale_every_n_layers; present keys of either must agree
// with the tensor shapes) and for tensors that cannot be mapped. The returned tensor_file's
// metadata notes the architecture, the rescale undone and whether a World vocabulary is embedded
// (io/gguf_vocab.hpp reads it).
inline tensor_file load_gguf(const std::filesystem::path& path) {
    const gguf_file g = read_gguf(path);
    const std::string where = path.string();
    const std::string arch = g.string_or("general.architecture", "");
    if (arch.empty()) throw rwkv::error(where + ": GGUF without 'general.architecture'");
    if (arch != "rwkv6" && arch != "rwkv5")
        throw rwkv::error(where + ": GGUF architecture '" + arch +
                          "' is not supported; this library reads 'rwkv6' (RWKV-6 Finch, llama.cpp's) and 'rwkv5' "
                          "(RWKV-5 Eagle, written by rwkv-quantize)");
    const bool x052 = arch == "rwkv5";
    auto key = [&](const char* k) { return arch + "." + k; };
    // rwkv5 is this library's own layout: keys it always writes are required, so that a file
    // from elsewhere cannot be silently misread (above all the rescale of the value matrices).
    auto integer = [&](const char* k, bool required) -> std::optional<std::int64_t> {
        const std::optional<std::int64_t> v = g.integer(key(k));
        if (!v && required) throw rwkv::error(where + ": missing metadata '" + key(k) + "' (an 'rwkv5' GGUF needs it)");
        if (v && (*v < 0 || *v > (std::int64_t{1} << 30)))
            throw rwkv::error(where + ": metadata '" + key(k) + "' = " + std::to_string(*v) + " is implausible");
        return v;
    };
    const std::int64_t rescale = integer("rescale_every_n_layers", x052).value_or(0);
    const std::optional<std::int64_t> blocks = integer("block_count", x052);
    const std::optional<std::int64_t> embd = integer("embedding_length", x052);
    const std::optional<std::int64_t> head_size = integer("wkv.head_size", x052);
    const std::optional<std::int64_t> ffn = integer("feed_forward_length", false);
    if (x052 && *head_size == 0) throw rwkv::error(where + ": metadata 'rwkv5.wkv.head_size' is 0");
    if (rescale > 0 && blocks && *blocks / rescale > 64)
        throw rwkv::error(where + ": " + key("rescale_every_n_layers") + " = " + std::to_string(rescale) + " with " +
                          std::to_string(*blocks) + " blocks would scale weights by more than 2^64");
    if (const gguf_value* tc = g.find("rwkv6.token_shift_count"); !x052 && tc && tc->is_integer() && tc->i != 2)
        throw rwkv::error(where + ": rwkv6.token_shift_count = " + std::to_string(tc->i) + " (RWKV-6 has 2)");
    tensor_file f;
    f.path = path;
    f.format = "GGUF v" + std::to_string(g.version);
    f.mappings.push_back(g.file);
    const detail::gguf_rwkv_arch a{x052, static_cast<int>(rescale), head_size.value_or(0)};
    for (const tensor_view& t : g.tensors) {
        if (t.name.rfind("blk.", 0) == 0 && blocks) {
            const int layer = std::atoi(t.name.c_str() + 4);
            if (layer >= *blocks)
                throw rwkv::error(where + ": tensor '" + t.name + "' is past " + key("block_count") + " = " +
                                  std::to_string(*blocks));
        }
        detail::gguf_rwkv_tensor(t, a, where, f.tensors);
    }
    // Metadata that disagrees with the tensors means a damaged or foreign file: say which.
    auto agree = [&](const std::optional<std::int64_t>& v, const char* k, const char* tensor, std::size_t axis) {
        const tensor_view* t = f.find(tensor);
        if (!v || !t || t->shape.size() <= axis || t->shape[axis] == *v) return;
        throw rwkv::error(where + ": metadata '" + key(k) + "' = " + std::to_string(*v) + " disagrees with tensor '" +
                          tensor + "' of shape " + detail::dims_string(t->shape));
    };
    agree(embd, "embedding_length", "emb.weight", 1);
    agree(head_size, "wkv.head_size", "blocks.0.att.time_faaaa", 1);
    agree(ffn, "feed_forward_length", "blocks.0.ffn.key.weight", 0);
    if (blocks && *blocks > 0 && !f.find("blocks." + std::to_string(*blocks - 1) + ".ln1.weight") &&
        f.find("blocks.0.ln1.weight"))
        throw rwkv::error(where + ": " + key("block_count") + " = " + std::to_string(*blocks) + " but block " +
                          std::to_string(*blocks - 1) + " has no tensors (blk." + std::to_string(*blocks - 1) +
                          ".attn_norm.weight is missing)");
    f.metadata.emplace_back("architecture", arch);
    if (const gguf_value* name = g.find("general.name"); name && name->type == gguf_type::string)
        f.metadata.emplace_back("name", name->s);
    if (const auto ft = g.integer("general.file_type"))
        f.metadata.emplace_back("file_type", std::to_string(*ft) + detail::llama_ftype_name(*ft));
    f.metadata.emplace_back(
        "rescale_every_n_layers",
        std::to_string(rescale) + (rescale > 0 ? " (time_mix_output/channel_mix_value multiplied back "
                                                 "by 2^(layer div " +
                                                     std::to_string(rescale) + "))"
                                               : ""));
    const std::string tok = g.string_or("tokenizer.ggml.model", "");
    f.metadata.emplace_back("vocabulary",
                            tok.empty() ? "none in file" : "embedded (tokenizer.ggml.model '" + tok + "')");
    return f;
}

}  // namespace rwkv::io
