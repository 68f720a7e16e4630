#pragma once
// The CUDA runtime pieces of the backend: error checking (every failing CUDA / cuBLAS call
// becomes an rwkv::error naming the call, the error and where it was made), RAII owners of
// device memory, pinned host memory, streams, cuBLAS handles and graphs, and the device's
// properties. Compiled only by nvcc (rwkv/cuda.hpp).

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "../../error.hpp"

namespace rwkv::backend::gpu {

// Throws rwkv::error "CUDA error in <call> (<file>:<line>): <name>: <description>".
inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
    if (e == cudaSuccess) return;
    throw error(std::string("CUDA error in ") + call + " (" + file + ":" + std::to_string(line) +
                "): " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

inline const char* cublas_status_name(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_(unknown)";
    }
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    throw error(std::string("cuBLAS error in ") + call + " (" + file + ":" + std::to_string(line) +
                "): " + cublas_status_name(s));
}

#define RWKV_CUDA_CHECK(call) ::rwkv::backend::gpu::check_cuda((call), #call, __FILE__, __LINE__)
#define RWKV_CUBLAS_CHECK(call) ::rwkv::backend::gpu::check_cublas((call), #call, __FILE__, __LINE__)
// After every kernel launch: a bad configuration (grid, block, shared memory) is reported here,
// naming the kernel, instead of surfacing at some later call.
#define RWKV_CUDA_LAUNCHED(kernel_name) \
    ::rwkv::backend::gpu::check_cuda(cudaGetLastError(), "launch of " kernel_name, __FILE__, __LINE__)

// Number of CUDA devices, 0 when there is none or no usable driver; `why` gets the reason.
inline int device_count(std::string* why = nullptr) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
        (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
        return 0;
    }
    if (n == 0 && why) *why = "cudaGetDeviceCount found no device";
    return n;
}

// Properties of the current device the launchers size grids and shared memory from.
struct device_info {
    int sm_count = 0;
    int max_smem_optin = 0;  // bytes of dynamic shared memory a block may opt in to
    int cc_major = 0, cc_minor = 0;
    std::string name;

    static const device_info& current() {
        thread_local device_info cached;
        thread_local int cached_for = -1;
        int dev = 0;
        RWKV_CUDA_CHECK(cudaGetDevice(&dev));
        if (cached_for != dev) {
            cudaDeviceProp p{};
            RWKV_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
            cached.sm_count = p.multiProcessorCount;
            cached.max_smem_optin = static_cast<int>(p.sharedMemPerBlockOptin);
            cached.cc_major = p.major;
            cached.cc_minor = p.minor;
            cached.name = p.name;
            cached_for = dev;
        }
        return cached;
    }
};

// Device memory of `bytes` bytes (cudaMalloc: 256-byte aligned). Move-only.
class device_buffer {
public:
    device_buffer() = default;
    explicit device_buffer(std::size_t bytes) { resize(bytes); }
    ~device_buffer() { release(); }
    device_buffer(device_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    // Reallocates (contents lost) when `bytes` is more than held.
    void reserve(std::size_t bytes) {
        if (bytes > n_) resize(bytes);
    }
    void resize(std::size_t bytes) {
        release();
        if (bytes == 0) return;
        const cudaError_t e = cudaMalloc(&p_, bytes);
        if (e != cudaSuccess) {
            p_ = nullptr;
            (void)cudaGetLastError();
            throw error("CUDA error in cudaMalloc of " + std::to_string(bytes) + " bytes: " + cudaGetErrorName(e) +
                        ": " + cudaGetErrorString(e));
        }
        n_ = bytes;
    }
    void* data() const { return p_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(p_);
    }
    std::size_t size() const { return n_; }

private:
    void release() noexcept {
        if (p_) cudaFree(p_);  // errors here cannot be reported from a destructor
        p_ = nullptr;
        n_ = 0;
    }
    void* p_ = nullptr;
    std::size_t n_ = 0;
};

// Page-locked host memory (cudaMallocHost): asynchronous copies and graph memcpy nodes need it.
class pinned_buffer {
public:
    pinned_buffer() = default;
    ~pinned_buffer() { release(); }
    pinned_buffer(pinned_buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    pinned_buffer& operator=(pinned_buffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;

    // Grows (contents lost) to at least `bytes`; returns true when it moved.
    bool reserve(std::size_t bytes) {
        if (bytes <= n_) return false;
        release();
        RWKV_CUDA_CHECK(cudaMallocHost(&p_, bytes));
        n_ = bytes;
        return true;
    }
    template <class T>
    T* as() const {
        return static_cast<T*>(p_);
    }
    std::size_t size() const { return n_; }

private:
    void release() noexcept {
        if (p_) cudaFreeHost(p_);
        p_ = nullptr;
        n_ = 0;
    }
    void* p_ = nullptr;
    std::size_t n_ = 0;
};

// A non-blocking stream (it never synchronises with the legacy default stream).
class stream {
public:
    stream() { RWKV_CUDA_CHECK(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
    ~stream() {
        if (s_) cudaStreamDestroy(s_);
    }
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    cudaStream_t get() const { return s_; }
    void sync() const { RWKV_CUDA_CHECK(cudaStreamSynchronize(s_)); }

private:
    cudaStream_t s_ = nullptr;
};

// A cuBLAS handle bound to one stream, with its own workspace (so work captured into a graph
// never allocates) and fp32 math that never silently drops to TF32.
class blas_handle {
public:
    explicit blas_handle(cudaStream_t s) {
        RWKV_CUBLAS_CHECK(cublasCreate(&h_));
        RWKV_CUBLAS_CHECK(cublasSetStream(h_, s));
        RWKV_CUBLAS_CHECK(cublasSetMathMode(h_, CUBLAS_DEFAULT_MATH));
        workspace_.resize(32u << 20);
        RWKV_CUBLAS_CHECK(cublasSetWorkspace(h_, workspace_.data(), workspace_.size()));
    }
    ~blas_handle() {
        if (h_) cublasDestroy(h_);
    }
    blas_handle(const blas_handle&) = delete;
    blas_handle& operator=(const blas_handle&) = delete;
    cublasHandle_t get() const { return h_; }

private:
    cublasHandle_t h_ = nullptr;
    device_buffer workspace_;
};

// An instantiated CUDA graph (the captured decode step).
class graph_exec {
public:
    graph_exec() = default;
    ~graph_exec() { release(); }
    graph_exec(graph_exec&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    graph_exec& operator=(graph_exec&& o) noexcept {
        if (this != &o) {
            release();
            g_ = std::exchange(o.g_, nullptr);
        }
        return *this;
    }
    graph_exec(const graph_exec&) = delete;
    graph_exec& operator=(const graph_exec&) = delete;

    // Instantiates `g` (which the caller still owns and destroys).
    void instantiate(cudaGraph_t g) {
        release();
        RWKV_CUDA_CHECK(cudaGraphInstantiate(&g_, g, 0));
    }
    void launch(cudaStream_t s) const { RWKV_CUDA_CHECK(cudaGraphLaunch(g_, s)); }
    explicit operator bool() const { return g_ != nullptr; }

private:
    void release() noexcept {
        if (g_) cudaGraphExecDestroy(g_);
        g_ = nullptr;
    }
    cudaGraphExec_t g_ = nullptr;
};

// Waits for the legacy default stream. cudaMemset / device-to-device cudaMemcpy (and the last
// DMA of a pageable host-to-device cudaMemcpy) may still run when they return, and the backend's
// own streams are non-blocking (no implicit ordering with the legacy stream): every plain
// cudaMemset / cudaMemcpy outside a workspace stream is followed by this.
inline void legacy_sync() { RWKV_CUDA_CHECK(cudaStreamSynchronize(cudaStreamLegacy)); }

inline unsigned blocks_for(std::size_t work, unsigned per_block) {
    const std::size_t b = (work + per_block - 1) / per_block;
    return static_cast<unsigned>(b < 1 ? 1 : b);
}

}  // namespace rwkv::backend::gpu
