// rwkv-bench-cuda: the CUDA backend's figures as fractions of this GPU's own limits, measured in
// the same run (tools/gpu-check.sh runs it after the tests):
//   limits   device-to-device copy bandwidth (read + write) and the cuBLAS bf16 GEMM rate
//   decode   tok/s at Eagle-0.4B / Finch-1.6B / Finch-3B shapes (bf16, random weights drawn on
//            the GPU), as a fraction of the HBM floor (copy bandwidth / weight bytes per token)
//   prefill  512 and 4096 tokens at Finch-1.6B, FLOP rate as a fraction of the GEMM rate, exact
//            (default) and with the opt-in tensor-core GEMMs (set_bf16_prefill)
//   batched  aggregate decode tok/s for B = 1, 8, 64, 256 at Finch-1.6B
// Usage: rwkv-bench-cuda [--quick]   (--quick: fewer repetitions, 0.4B shapes only)
// Exit status 2 when there is no usable CUDA device.

#include <rwkv/cuda.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "shapes.hpp"

namespace gpu = rwkv::backend::gpu;

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Bytes per second of cudaMemcpy device to device (each byte read once and written once: the
// figure counts both, as HBM sees them).
double copy_bandwidth() {
    const std::size_t bytes = std::size_t{1} << 30;
    gpu::device_buffer a(bytes), b(bytes);
    RWKV_CUDA_CHECK(cudaMemset(a.data(), 1, bytes));
    cudaEvent_t e0, e1;
    RWKV_CUDA_CHECK(cudaEventCreate(&e0));
    RWKV_CUDA_CHECK(cudaEventCreate(&e1));
    RWKV_CUDA_CHECK(cudaMemcpy(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    const int reps = 10;
    RWKV_CUDA_CHECK(cudaEventRecord(e0));
    for (int i = 0; i < reps; ++i)
        RWKV_CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice));
    RWKV_CUDA_CHECK(cudaEventRecord(e1));
    RWKV_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    RWKV_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 2.0 * static_cast<double>(bytes) * reps / (ms * 1e-3);
}

// FLOP/s of a cuBLAS bf16 GEMM with fp32 accumulation (M = N = K = 8192): the tensor-core rate
// prefill is compared with.
double gemm_rate() {
    const int n = 8192;
    const std::size_t elems = static_cast<std::size_t>(n) * n;
    gpu::device_buffer A(elems * 2), B(elems * 2), C(elems * 4);
    RWKV_CUDA_CHECK(cudaMemset(A.data(), 0x3c, elems * 2));  // bf16 ~0.01: finite products
    RWKV_CUDA_CHECK(cudaMemset(B.data(), 0x3c, elems * 2));
    gpu::stream s;
    gpu::blas_handle h(s.get());
    const float one = 1.0f, zero = 0.0f;
    auto run = [&] {
        RWKV_CUBLAS_CHECK(cublasGemmEx(h.get(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, A.data(), CUDA_R_16BF, n,
                                       B.data(), CUDA_R_16BF, n, &zero, C.data(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
    };
    run();
    s.sync();
    const int reps = 20;
    const auto t0 = clock_type::now();
    for (int i = 0; i < reps; ++i) run();
    s.sync();
    return 2.0 * n * static_cast<double>(n) * n * reps / seconds_since(t0);
}

inline constexpr bench::Shape finch_3b{"Finch-3B", rwkv::Version::x060, 32, 2560, 8960, 65536};

using Model = rwkv::Model<rwkv::bfloat16, rwkv::cuda>;

// Decode tok/s (one sequence, one token per call; graphs on unless told).
double decode_rate(const Model& m, int tokens, bool graphs) {
    Model mm = m;
    mm.set_graphs(graphs);
    auto s = mm.new_state();
    rwkv::token t = 1;
    for (int i = 0; i < 5; ++i) mm.forward(t, s);  // warm-up; the graph is captured here
    const auto t0 = clock_type::now();
    for (int i = 0; i < tokens; ++i) mm.forward(static_cast<rwkv::token>((i * 7919 + 1) % 65536), s);
    return tokens / seconds_since(t0);
}

// Seconds of a prefill of T tokens into a fresh state (best of reps).
double prefill_seconds(const Model& m, int T, bool fast, int reps) {
    Model mm = m;
    mm.set_bf16_prefill(fast);
    std::vector<rwkv::token> toks(static_cast<std::size_t>(T));
    for (int i = 0; i < T; ++i) toks[static_cast<std::size_t>(i)] = (i * 104729 + 3) % 65536;
    double best = 1e30;
    for (int r = 0; r < reps + 1; ++r) {  // the first run grows the buffers
        auto s = mm.new_state();
        const auto t0 = clock_type::now();
        mm.forward(std::span<const rwkv::token>(toks), s);
        const double sec = seconds_since(t0);
        if (r > 0) best = std::min(best, sec);
    }
    return best;
}

// Aggregate tok/s of forward_batch with B sequences.
double batch_rate(const Model& m, int B, bool fast, int steps) {
    Model mm = m;
    mm.set_bf16_prefill(fast);
    std::vector<rwkv::CudaState> states;
    for (int b = 0; b < B; ++b) states.push_back(mm.new_state());
    std::vector<rwkv::CudaState*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<rwkv::token> toks(static_cast<std::size_t>(B));
    for (int b = 0; b < B; ++b) toks[static_cast<std::size_t>(b)] = (b * 31 + 7) % 65536;
    for (int i = 0; i < 3; ++i)
        mm.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::CudaState* const>(ptrs));
    const auto t0 = clock_type::now();
    for (int i = 0; i < steps; ++i)
        mm.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::CudaState* const>(ptrs));
    return static_cast<double>(B) * steps / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
    std::string why;
    if (gpu::device_count(&why) == 0) {
        std::fprintf(stderr, "rwkv-bench-cuda: no usable CUDA device (%s)\n", why.c_str());
        return 2;
    }
    try {
        const auto& d = gpu::device_info::current();
        std::printf("device: %s (compute capability %d.%d, %d SMs)\n", d.name.c_str(), d.cc_major, d.cc_minor,
                    d.sm_count);
        const double bw = copy_bandwidth();
        const double rate = gemm_rate();
        std::printf("\n== limits ==\n");
        std::printf("device-to-device copy: %.0f GB/s (read + write)\n", bw / 1e9);
        std::printf("cuBLAS bf16 GEMM (8192^3, fp32 accumulate): %.0f TFLOP/s\n", rate / 1e12);

        std::printf("\n== decode, bf16 weights, batch 1 (HBM floor = copy bandwidth / weight bytes per token) ==\n");
        std::printf("%-11s %10s %10s %12s %10s %14s\n", "shape", "GB/token", "tok/s", "floor tok/s", "fraction",
                    "eager tok/s");
        std::vector<bench::Shape> shapes = {bench::eagle_0b4, bench::finch_1b6, finch_3b};
        if (quick) shapes = {bench::eagle_0b4};
        for (const auto& sh : shapes) {
            const auto c = bench::config_of(sh);
            auto m = Model::random_on_device(c, 1);
            const double bytes = bench::weight_bytes_per_token<rwkv::bfloat16>(c);
            const double floor = bw / bytes;
            const int tokens = quick ? 50 : 300;
            const double tps = decode_rate(m, tokens, true);
            const double eager = decode_rate(m, quick ? 20 : 100, false);
            std::printf("%-11s %10.3f %10.1f %12.1f %9.1f%% %14.1f\n", sh.name, bytes / 1e9, tps, floor,
                        100.0 * tps / floor, eager);
            std::fflush(stdout);
        }

        const auto c16 = bench::config_of(quick ? bench::finch_0b4 : bench::finch_1b6);
        auto m16 = Model::random_on_device(c16, 2);
        std::printf("\n== prefill at %s (FLOP rate as a fraction of the GEMM rate) ==\n",
                    quick ? "Finch-0.4B" : "Finch-1.6B");
        std::printf("%-7s %-22s %10s %12s %10s %10s\n", "tokens", "GEMMs", "seconds", "tok/s", "TFLOP/s", "fraction");
        for (int T : {512, 4096}) {
            for (bool fast : {false, true}) {
                const double sec = prefill_seconds(m16, T, fast, quick ? 1 : 3);
                const double flops = bench::flops_per_prefill_token(c16) * T;
                std::printf("%-7d %-22s %10.4f %12.0f %10.1f %9.1f%%\n", T,
                            fast ? "bf16 tensor cores" : "exact (fp32 on widened)", sec, T / sec, flops / sec / 1e12,
                            100.0 * flops / sec / rate);
                std::fflush(stdout);
            }
        }

        std::printf("\n== batched decode at %s: aggregate tok/s (forward_batch) ==\n",
                    quick ? "Finch-0.4B" : "Finch-1.6B");
        std::printf("%-5s %16s %16s %10s\n", "B", "exact tok/s", "fast tok/s", "fast x B1");
        double b1 = 0;
        for (int B : {1, 8, 64, 256}) {
            const int steps = quick ? 5 : (B <= 8 ? 100 : 20);
            const double exact = batch_rate(m16, B, false, steps);
            const double fast = B <= gpu::mv_max_cols ? exact : batch_rate(m16, B, true, steps);
            if (B == 1) b1 = fast;
            std::printf("%-5d %16.1f %16.1f %9.1fx\n", B, exact, fast, fast / b1);
            std::fflush(stdout);
        }
        std::printf("\n(B <= %d decodes with the exact streaming mat-vec, so 'fast' = 'exact' there.)\n",
                    gpu::mv_max_cols);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rwkv-bench-cuda: %s\n", e.what());
        return 1;
    }
    return 0;
}
