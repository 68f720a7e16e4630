#pragma once
// rwkv::CudaState — the recurrent state of one sequence in GPU memory, in exactly the layout of
// the CPU rwkv::State (per layer: att shift [C], WKV [H][N key][N value], ffn shift [C]). It is a
// value like State: copying forks a conversation (a device-to-device copy). Saving, loading and
// serialising go through host bytes in the CPU State's format (state.hpp), so a conversation
// moves between CPU and GPU in either direction (to_host / from_host, or a saved file).

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../../config.hpp"
#include "../../error.hpp"
#include "../../state.hpp"
#include "ops.cuh"
#include "runtime.cuh"

namespace rwkv {

class CudaState {
public:
    CudaState() = default;
    // Zeros, on the current device.
    explicit CudaState(const Config& config) : config_(config) {
        RWKV_CUDA_CHECK(cudaGetDevice(&device_));
        data_.resize(bytes());
        reset();
    }

    CudaState(const CudaState& o) : config_(o.config_), fingerprint_(o.fingerprint_), device_(o.device_) {
        o.sync();
        data_.resize(o.bytes());
        if (bytes()) RWKV_CUDA_CHECK(cudaMemcpy(data_.data(), o.data_.data(), bytes(), cudaMemcpyDeviceToDevice));
        backend::gpu::legacy_sync();
    }
    CudaState& operator=(const CudaState& o) {
        if (this != &o) {
            o.sync();
            sync();
            if (o.bytes() != data_.size()) data_.resize(o.bytes());
            config_ = o.config_;
            fingerprint_ = o.fingerprint_;
            device_ = o.device_;
            if (bytes()) RWKV_CUDA_CHECK(cudaMemcpy(data_.data(), o.data_.data(), bytes(), cudaMemcpyDeviceToDevice));
            backend::gpu::legacy_sync();
        }
        return *this;
    }
    CudaState(CudaState&&) noexcept = default;
    CudaState& operator=(CudaState&&) noexcept = default;
    ~CudaState() = default;

    const Config& config() const { return config_; }
    int device() const { return device_; }

    // Bytes of recurrent state: 4 × n_layer × (2 C + H N²), as State::bytes().
    std::size_t bytes() const {
        const auto C = static_cast<std::size_t>(config_.n_embd);
        const std::size_t wkv = static_cast<std::size_t>(config_.n_head) * config_.head_size * config_.head_size;
        return static_cast<std::size_t>(config_.n_layer) * (2 * C + wkv) * sizeof(float);
    }

    // The device copy of the state (State::data()'s layout); valid while the state lives.
    float* device_data() { return data_.as<float>(); }
    const float* device_data() const { return data_.as<float>(); }

    std::uint64_t model_fingerprint() const { return fingerprint_; }
    void set_model_fingerprint(std::uint64_t fingerprint) { fingerprint_ = fingerprint; }

    // All zeros (Model<T, cuda>::reset also applies a state-tuned model's initial state).
    void reset() {
        sync();
        if (bytes()) RWKV_CUDA_CHECK(cudaMemset(data_.data(), 0, bytes()));
        backend::gpu::legacy_sync();
    }

    // The same state on the host: a CPU State with this shape, fingerprint and values.
    State to_host() const {
        sync();
        State h(config_);
        h.set_model_fingerprint(fingerprint_);
        if (bytes()) RWKV_CUDA_CHECK(cudaMemcpy(h.data().data(), data_.data(), bytes(), cudaMemcpyDeviceToHost));
        return h;
    }

    // Takes the values of a CPU State of the same model: same shape, and the same fingerprint
    // unless either is unknown (0). Throws rwkv::error naming both models otherwise.
    void from_host(const State& h) {
        if (!(h.config() == config_))
            throw error("state belongs to a model of another shape (state: " +
                        State::describe(h.config(), h.model_fingerprint()) +
                        "; this model: " + State::describe(config_, fingerprint_) + ")");
        if (h.model_fingerprint() != 0 && fingerprint_ != 0 && h.model_fingerprint() != fingerprint_)
            throw error("state belongs to another model (state: " + State::describe(h.config(), h.model_fingerprint()) +
                        "; this model: " + State::describe(config_, fingerprint_) + ")");
        upload(h.data().data());
    }

    // State's byte format (state.hpp), through a host copy.
    std::vector<std::byte> serialize() const { return to_host().serialize(); }
    void deserialize(std::span<const std::byte> bytes, const std::string& source = "state") {
        State h(config_);
        h.set_model_fingerprint(fingerprint_);
        h.deserialize(bytes, source);  // checks shape, fingerprint, checksum
        upload(h.data().data());
    }
    void save(const std::filesystem::path& path) const { to_host().save(path); }
    void load(const std::filesystem::path& path) {
        State h(config_);
        h.set_model_fingerprint(fingerprint_);
        h.load(path);
        upload(h.data().data());
    }

    // The stream, buffers and captured graphs of forward calls on this state (not its value).
    backend::gpu::Workspace& workspace() {
        if (!ws_) ws_ = std::make_unique<backend::gpu::Workspace>();
        return *ws_;
    }

private:
    void sync() const {
        if (ws_) ws_->s.sync();
    }
    void upload(const float* host) {
        sync();
        if (bytes()) RWKV_CUDA_CHECK(cudaMemcpy(data_.data(), host, bytes(), cudaMemcpyHostToDevice));
        backend::gpu::legacy_sync();
    }

    Config config_{};
    std::uint64_t fingerprint_ = 0;
    int device_ = 0;
    backend::gpu::device_buffer data_;
    std::unique_ptr<backend::gpu::Workspace> ws_;
};

}  // namespace rwkv
