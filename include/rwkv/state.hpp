#pragma once
// rwkv::State — the recurrent state of one sequence: per layer the two token-shift vectors and
// H fp32 N×N WKV matrices. A State is a value: copying it forks a conversation, and copies only
// the recurrent state (the forward scratch that hangs off a state is never copied; a copy grows
// its own on first use).

#include <cstdint>
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

    State(const State& o) : config_(o.config_), data_(o.data_) {}
    State& operator=(const State& o) {
        if (this != &o) {
            config_ = o.config_;
            data_ = o.data_;
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

    // ---- serialisation: "RWKVSTAT", u32 format, u32 version, u32 n_layer, n_embd, n_head,
    // head_size, u64 float count, floats (little-endian), u64 FNV-1a of everything before it.
    std::vector<std::byte> serialize() const {
        // Sized up front and filled with memcpy (vector::insert trips a GCC 12 false warning).
        const std::size_t total = 8 + 6 * 4 + 8 + data_.size() * sizeof(float) + 8;
        std::vector<std::byte> out(total);
        std::size_t pos = 0;
        auto put = [&out, &pos](const void* p, std::size_t n) {
            std::memcpy(out.data() + pos, p, n);
            pos += n;
        };
        put(magic, 8);
        const std::uint32_t head[6] = {format_version, static_cast<std::uint32_t>(config_.version),
                                       static_cast<std::uint32_t>(config_.n_layer),
                                       static_cast<std::uint32_t>(config_.n_embd),
                                       static_cast<std::uint32_t>(config_.n_head),
                                       static_cast<std::uint32_t>(config_.head_size)};
        put(head, sizeof head);
        const std::uint64_t n = data_.size();
        put(&n, sizeof n);
        put(data_.data(), data_.size() * sizeof(float));
        const std::uint64_t sum = fnv1a(std::span(out).first(pos));
        put(&sum, sizeof sum);
        return out;
    }

    // Restores a state written by serialize(). Throws rwkv::error (naming `source`) when the bytes
    // are truncated or corrupt, or were saved from a model of another version or shape.
    void deserialize(std::span<const std::byte> bytes, const std::string& source = "state") {
        constexpr std::size_t header = 8 + 6 * 4 + 8;
        if (bytes.size() < header + 8) throw error(source + ": truncated state (" + std::to_string(bytes.size()) + " bytes)");
        if (std::memcmp(bytes.data(), magic, 8) != 0) throw error(source + ": not an rwkv state (bad magic)");
        std::uint32_t head[6];
        std::memcpy(head, bytes.data() + 8, sizeof head);
        if (head[0] != format_version)
            throw error(source + ": unsupported state format version " + std::to_string(head[0]));
        std::uint64_t n;
        std::memcpy(&n, bytes.data() + 8 + sizeof head, sizeof n);
        if (n > (bytes.size() - header - 8) / sizeof(float) || header + n * sizeof(float) + 8 != bytes.size())
            throw error(source + ": truncated or oversized state (" + std::to_string(bytes.size()) +
                        " bytes for " + std::to_string(n) + " floats)");
        std::uint64_t sum;
        std::memcpy(&sum, bytes.data() + header + n * sizeof(float), sizeof sum);
        if (sum != fnv1a(bytes.first(header + n * sizeof(float))))
            throw error(source + ": state checksum mismatch (corrupt file)");
        const std::uint32_t want[5] = {static_cast<std::uint32_t>(config_.version),
                                       static_cast<std::uint32_t>(config_.n_layer),
                                       static_cast<std::uint32_t>(config_.n_embd),
                                       static_cast<std::uint32_t>(config_.n_head),
                                       static_cast<std::uint32_t>(config_.head_size)};
        if (std::memcmp(head + 1, want, sizeof want) != 0 || n != data_.size()) {
            auto shape = [](const std::uint32_t* h) {
                return std::string(h[0] == 0 ? "x052" : h[0] == 1 ? "x060" : "unknown") + " L" +
                       std::to_string(h[1]) + " C" + std::to_string(h[2]) + " H" + std::to_string(h[3]) +
                       " N" + std::to_string(h[4]);
            };
            throw error(source + ": state is for a model of another shape (" + shape(head + 1) +
                        "), this model is " + shape(want));
        }
        std::memcpy(data_.data(), bytes.data() + header, n * sizeof(float));
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
    static constexpr std::uint32_t format_version = 1;

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
    std::vector<float> data_;
    std::unique_ptr<detail::Workspace> ws_;
};

}  // namespace rwkv
