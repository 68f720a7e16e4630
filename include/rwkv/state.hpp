#pragma once
// rwkv::State — the recurrent state of one sequence: per layer the two token-shift vectors and
// H fp32 N×N WKV matrices. A State is a value: copying it forks a conversation, and copies only
// the recurrent state (the forward scratch that hangs off a state is never copied; a copy grows
// its own on first use).

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config.hpp"
#include "error.hpp"
#include "backend/workspace.hpp"

namespace rwkv {

class State {
public:
    State() = default;
    explicit State(const Config& config) : config_(config) {
        data_.assign(static_cast<std::size_t>(config_.n_layer) * layer_floats(), 0.0f);
    }

    State(const State& o) : config_(o.config_), fingerprint_(o.fingerprint_), data_(o.data_) {}
    State& operator=(const State& o) {
        if (this != &o) {
            config_ = o.config_;
            data_ = o.data_;
            fingerprint_ = o.fingerprint_;
        }
        return *this;
    }
    State(State&&) noexcept = default;
    State& operator=(State&&) noexcept = default;
    ~State() = default;

    const Config& config() const { return config_; }

    // Bytes of recurrent state (what a copy moves): 4 × n_layer × (2 C + H N²).
    std::size_t bytes() const { return data_.size() * sizeof(float); }

    // Per-layer views, in the official model.py order: att_x_prev [C], att_wkv [H][N key][N value],
    // ffn_x_prev [C]. The same order is used by data() and the serialised form.
    std::span<float> att_shift(int layer) { return {layer_ptr(layer), c()}; }
    std::span<float> wkv(int layer) { return {layer_ptr(layer) + c(), wkv_floats()}; }
    std::span<float> ffn_shift(int layer) { return {layer_ptr(layer) + c() + wkv_floats(), c()}; }
    std::span<const float> att_shift(int layer) const { return const_cast<State*>(this)->att_shift(layer); }
    std::span<const float> wkv(int layer) const { return const_cast<State*>(this)->wkv(layer); }
    std::span<const float> ffn_shift(int layer) const { return const_cast<State*>(this)->ffn_shift(layer); }

    std::span<float> data() { return data_; }
    std::span<const float> data() const { return data_; }

    void reset() { std::fill(data_.begin(), data_.end(), 0.0f); }
    State clone() const { return *this; }

    // ---- identity: the model a state belongs to is its full shape (config()) plus a fingerprint
    // of that model's weights (rwkv/fingerprint.hpp), stamped by Model::new_state(). 0 = unknown
    // (a State built from a Config by hand): then only the shape is checked.
    std::uint64_t model_fingerprint() const { return fingerprint_; }
    void set_model_fingerprint(std::uint64_t fingerprint) { fingerprint_ = fingerprint; }

    // ---- serialisation (format 2): "RWKVSTAT", u32 format, u32 version, n_layer, n_embd, n_head,
    // head_size, dim_att, dim_ffn, vocab_size, dim_lora_mix, dim_lora_decay, u64 model fingerprint,
    // u64 float count, floats, u64 FNV-1a of everything before it; all little-endian.
    // Format 1 (read only) had just the first five shape fields and no fingerprint.
    std::vector<std::byte> serialize() const {
        // Sized up front and filled with memcpy (vector::insert trips a GCC 12 false warning).
        const std::size_t total = header_bytes(format_version) + data_.size() * sizeof(float) + 8;
        std::vector<std::byte> out(total);
        std::size_t pos = 0;
        auto put = [&out, &pos](const void* p, std::size_t n) {
            if (n != 0) std::memcpy(out.data() + pos, p, n);  // p may be null when n == 0
            pos += n;
        };
        put(magic, 8);
        put(&format_version, 4);
        const auto shape = shape_fields(config_);
        put(shape.data(), shape.size() * 4);
        put(&fingerprint_, 8);
        const std::uint64_t n = data_.size();
        put(&n, sizeof n);
        put(data_.data(), data_.size() * sizeof(float));
        const std::uint64_t sum = fnv1a(std::span(out).first(pos));
        put(&sum, sizeof sum);
        return out;
    }

    // Restores a state written by serialize() (format 2, or format 1 of earlier releases) into
    // this state, whose shape and model fingerprint stay as they are. Throws rwkv::error (naming
    // `source`) when the bytes are truncated or corrupt, or were saved from a model of another
    // shape or, for format 2, from other weights (the message names both models). Format 1 files
    // record no fingerprint and only part of the shape: they load when that part matches.
    void deserialize(std::span<const std::byte> bytes, const std::string& source = "state") {
        if (bytes.size() < 12 || std::memcmp(bytes.data(), magic, 8) != 0) {
            if (bytes.size() >= 8 && std::memcmp(bytes.data(), magic, 8) != 0)
                throw error(source + ": not an rwkv state (bad magic)" +
                            (std::memcmp(bytes.data(), "PK\x03\x04", 4) == 0
                                 ? "; a state-tuning .pth loads with rwkv::load_state_file (rwkv/state_file.hpp)"
                                 : ""));
            throw error(source + ": truncated state (" + std::to_string(bytes.size()) + " bytes)");
        }
        std::uint32_t format;
        std::memcpy(&format, bytes.data() + 8, 4);
        if (format != 1 && format != format_version)
            throw error(source + ": unsupported state format version " + std::to_string(format) +
                        " (this library reads 1 and " + std::to_string(format_version) + ")");
        const std::size_t header = header_bytes(format);
        if (bytes.size() < header + 8)
            throw error(source + ": truncated state (" + std::to_string(bytes.size()) + " bytes)");
        const std::size_t n_shape = format == 1 ? 5 : shape_count;
        std::array<std::uint32_t, shape_count> shape{};
        std::memcpy(shape.data(), bytes.data() + 12, n_shape * 4);
        std::uint64_t fingerprint = 0, n;
        if (format != 1) std::memcpy(&fingerprint, bytes.data() + 12 + n_shape * 4, 8);
        std::memcpy(&n, bytes.data() + header - 8, sizeof n);
        if (n > (bytes.size() - header - 8) / sizeof(float) || header + n * sizeof(float) + 8 != bytes.size())
            throw error(source + ": truncated or oversized state (" + std::to_string(bytes.size()) + " bytes for " +
                        std::to_string(n) + " floats)");
        std::uint64_t sum;
        std::memcpy(&sum, bytes.data() + header + n * sizeof(float), sizeof sum);
        if (sum != fnv1a(bytes.first(header + n * sizeof(float))))
            throw error(source + ": state checksum mismatch (corrupt file)");
        const auto want = shape_fields(config_);
        const bool same_shape =
            std::equal(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(n_shape), want.begin());
        const bool other_weights = fingerprint != 0 && fingerprint_ != 0 && fingerprint != fingerprint_;
        if (!same_shape || n != data_.size() || other_weights) {
            const std::uint32_t* file_shape = shape.data();
            const bool shape_ok = same_shape && n == data_.size();
            throw error(source + ": state belongs to " + (shape_ok ? "another model" : "a model of another shape") +
                        " (state: " + describe(file_shape, n_shape, fingerprint) +
                        "; this model: " + describe(want.data(), shape_count, fingerprint_) + ")" +
                        (shape_ok ? ": same shape, other weights" : ""));
        }
        // Only when there is something to copy: data_.data() is null for an empty state (UB in memcpy).
        if (n != 0) std::memcpy(data_.data(), bytes.data() + header, n * sizeof(float));
    }

    // "x060 L24 C2048 H32 N64 A2048 F7168 V65536 Dm32 Dw64 weights 0123456789abcdef": how the
    // errors about foreign states name a model (weights "unknown" for fingerprint 0).
    static std::string describe(const Config& c, std::uint64_t fingerprint) {
        return describe(shape_fields(c).data(), shape_count, fingerprint);
    }

    void save(const std::filesystem::path& path) const {
        const auto bytes = serialize();
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        if (!out) throw error(path.string() + ": cannot write state file");
    }

    void load(const std::filesystem::path& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw error(path.string() + ": cannot open state file");
        std::vector<char> buf((std::istreambuf_iterator<char>(in)), {});
        deserialize(std::as_bytes(std::span(buf)), path.string());
    }

    // Scratch memory for forward() (created on first use); not part of the state's value.
    detail::Workspace& workspace() {
        if (!ws_) ws_ = std::make_unique<detail::Workspace>();
        return *ws_;
    }

private:
    static constexpr char magic[8] = {'R', 'W', 'K', 'V', 'S', 'T', 'A', 'T'};
    static constexpr std::uint32_t format_version = 2;
    static constexpr std::size_t shape_count = 10;

    // magic, format, shape fields, (format 2: fingerprint), float count.
    static constexpr std::size_t header_bytes(std::uint32_t format) {
        return format == 1 ? 8 + 4 + 5 * 4 + 8 : 8 + 4 + shape_count * 4 + 8 + 8;
    }
    static std::array<std::uint32_t, shape_count> shape_fields(const Config& c) {
        auto u = [](int x) { return static_cast<std::uint32_t>(x); };
        return {static_cast<std::uint32_t>(c.version),
                u(c.n_layer),
                u(c.n_embd),
                u(c.n_head),
                u(c.head_size),
                u(c.dim_att),
                u(c.dim_ffn),
                u(c.vocab_size),
                u(c.dim_lora_mix),
                u(c.dim_lora_decay)};
    }
    static std::string describe(const std::uint32_t* h, std::size_t count, std::uint64_t fingerprint) {
        static constexpr const char* label[shape_count] = {"", " L", " C", " H", " N", " A", " F", " V", " Dm", " Dw"};
        std::string out = h[0] == 0 ? "x052" : h[0] == 1 ? "x060" : "unknown";
        for (std::size_t i = 1; i < count; ++i) out += label[i] + std::to_string(h[i]);
        if (count < shape_count) return out + " (format 1 state: no fingerprint)";
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fingerprint));
        return out + " weights " + (fingerprint ? std::string(hex) : std::string("unknown"));
    }

    std::size_t c() const { return static_cast<std::size_t>(config_.n_embd); }
    std::size_t wkv_floats() const {
        return static_cast<std::size_t>(config_.n_head) * config_.head_size * config_.head_size;
    }
    std::size_t layer_floats() const { return 2 * c() + wkv_floats(); }
    float* layer_ptr(int layer) {
        if (layer < 0 || layer >= config_.n_layer)
            throw error("state: layer " + std::to_string(layer) + " out of range");
        return data_.data() + static_cast<std::size_t>(layer) * layer_floats();
    }
    static std::uint64_t fnv1a(std::span<const std::byte> b) {
        std::uint64_t h = 1469598103934665603ull;
        for (std::byte x : b) h = (h ^ static_cast<std::uint64_t>(x)) * 1099511628211ull;
        return h;
    }

    Config config_{};
    std::uint64_t fingerprint_ = 0;  // see model_fingerprint()
    std::vector<float> data_;
    std::unique_ptr<detail::Workspace> ws_;
};

}  // namespace rwkv
