// The CUDA backend on a GPU: every op against backend/reference.hpp on odd shapes (so a failure
// names the op, the shape and the worst element), then whole models: every fixture's goldens,
// GPU vs CPU on random models (odd shapes and released ones), batched = per sequence, graphs =
// eager, state round trips CPU ⇄ GPU, and the error cases. Every test case skips with a message
// when cudaGetDeviceCount finds no usable device. The arithmetic of each kernel is also checked
// without a GPU by tests/test_cuda_math.cpp.

#include <rwkv/cuda.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"
#include "model_fixtures.hpp"
#include "temp_files.hpp"

namespace gpu = rwkv::backend::gpu;
using Ref = rwkv::backend_ops<rwkv::reference>;
using Ops = rwkv::backend_ops<rwkv::cuda>;
using namespace model_fixtures;

#define RWKV_REQUIRE_GPU()                                                                          \
    do {                                                                                            \
        std::string why_;                                                                           \
        if (gpu::device_count(&why_) == 0) {                                                        \
            WARN("SKIPPED: no usable CUDA device (" << why_ << "); this test needs an NVIDIA GPU"); \
            return;                                                                                 \
        }                                                                                           \
    } while (0)

namespace {

using test_support::check_close;
using test_support::rel_rms;
using test_support::rnd;

// A device copy of host floats.
struct dvec {
    gpu::device_buffer b;
    std::size_t n = 0;
    explicit dvec(const std::vector<float>& h) : b(std::max<std::size_t>(1, h.size()) * 4), n(h.size()) {
        if (n) RWKV_CUDA_CHECK(cudaMemcpy(b.data(), h.data(), n * 4, cudaMemcpyHostToDevice));
        gpu::legacy_sync();  // the ops run on a non-blocking stream
    }
    explicit dvec(std::size_t count) : dvec(std::vector<float>(count, 0.0f)) {}
    float* p() const { return b.as<float>(); }
    std::vector<float> get() const {
        std::vector<float> h(n);
        RWKV_CUDA_CHECK(cudaDeviceSynchronize());
        if (n) RWKV_CUDA_CHECK(cudaMemcpy(h.data(), b.data(), n * 4, cudaMemcpyDeviceToHost));
        return h;
    }
};

// A weight of format t on the host (reference) and the device (padded rows), same values.
struct test_mat {
    rwkv::Weight host;
    gpu::device_buffer buf;
    gpu::dmat dev;
    test_mat(rwkv::dtype t, const std::vector<float>& values, int rows, int cols) {
        host = rwkv::Weight::encode(t, values.data(), rows, cols);
        dev.type = t == rwkv::dtype::f32    ? gpu::wtype::f32
                   : t == rwkv::dtype::bf16 ? gpu::wtype::bf16
                                            : gpu::wtype::f16;
        dev.rows = rows;
        dev.cols = cols;
        dev.ld = gpu::dmat::ld_for(dev.type, cols);
        buf.resize(std::max<std::size_t>(1, dev.bytes()));
        RWKV_CUDA_CHECK(cudaMemset(buf.data(), 0, buf.size()));
        const std::size_t es = gpu::wtype_bytes(dev.type);
        RWKV_CUDA_CHECK(cudaMemcpy2D(buf.data(), dev.ld * es, host.data, host.row_bytes,
                                     static_cast<std::size_t>(cols) * es, static_cast<std::size_t>(rows),
                                     cudaMemcpyHostToDevice));
        dev.data = buf.data();
        gpu::legacy_sync();
    }
};

const char* epi_name(gpu::epilogue e) {
    switch (e) {
        case gpu::epilogue::none: return "none";
        case gpu::epilogue::add: return "add";
        case gpu::epilogue::tanh: return "tanh";
        case gpu::epilogue::silu: return "silu";
        case gpu::epilogue::relu_sq: return "relu_sq";
        case gpu::epilogue::gate_add: return "gate_add";
        case gpu::epilogue::ddlerp: return "ddlerp";
        case gpu::epilogue::decay: return "decay";
    }
    return "?";
}

}  // namespace

TEST_CASE("a CUDA device is present (else every test here skips)", "[cuda]") {
    RWKV_REQUIRE_GPU();
    const auto& d = gpu::device_info::current();
    std::printf("CUDA device: %s, compute capability %d.%d, %d SMs, %d KiB opt-in shared memory per block\n",
                d.name.c_str(), d.cc_major, d.cc_minor, d.sm_count, d.max_smem_optin / 1024);
    CHECK(d.sm_count > 0);
}

TEST_CASE("cuda project: every weight type, row count, stride and epilogue against the reference", "[cuda][ops]") {
    RWKV_REQUIRE_GPU();
    std::mt19937 g(7);
    Ops::Workspace ws;
    rwkv::detail::Workspace rws;
    struct Shape {
        int rows, cols;
    };
    for (rwkv::dtype t : {rwkv::dtype::f32, rwkv::dtype::bf16, rwkv::dtype::f16})
        for (Shape s : {Shape{1, 1}, Shape{7, 13}, Shape{64, 100}, Shape{300, 257}, Shape{33, 1024}})
            for (int n : {1, 2, 8, 9, 37})
                for (int pad : {0, 3}) {
                    const std::size_t ldx = static_cast<std::size_t>(s.cols + pad);
                    const std::size_t ldy = static_cast<std::size_t>(s.rows);
                    test_mat W(t, rnd(static_cast<std::size_t>(s.rows) * s.cols, g), s.rows, s.cols);
                    const auto X = rnd(static_cast<std::size_t>(n) * ldx, g);
                    // Reference: dense X rows, then the epilogue on the host.
                    std::vector<float> Xd(static_cast<std::size_t>(n) * s.cols),
                        dots(static_cast<std::size_t>(n) * ldy);
                    for (int i = 0; i < n; ++i)
                        std::copy_n(X.begin() + static_cast<std::ptrdiff_t>(i * ldx), s.cols,
                                    Xd.begin() + static_cast<std::ptrdiff_t>(i) * s.cols);
                    Ref::project(rws, W.host, Xd.data(), n, dots.data());
                    const auto a = rnd(dots.size(), g), b = rnd(dots.size(), g), c = rnd(ldy, g, -2.0f, 1.0f);
                    const auto y0 = rnd(dots.size(), g);
                    for (gpu::epilogue e : {gpu::epilogue::none, gpu::epilogue::add, gpu::epilogue::tanh,
                                            gpu::epilogue::silu, gpu::epilogue::relu_sq, gpu::epilogue::gate_add,
                                            gpu::epilogue::ddlerp, gpu::epilogue::decay}) {
                        dvec dX(X), dY(y0), dA(a), dB(b), dC(c), dY2(dots.size());
                        gpu::epilogue_args ep;
                        ep.a = dA.p();
                        ep.b = dB.p();
                        ep.c = dC.p();
                        ep.y2 = dY2.p();
                        Ops::project(ws, {&W.dev, dX.p(), ldx, dY.p(), ldy, e, ep}, n);
                        gpu::epilogue_args hp{a.data(), b.data(), c.data(), nullptr, ldy};
                        std::vector<float> want = y0, want2(dots.size());
                        hp.y2 = want2.data();
                        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i)
                            for (std::size_t o = 0; o < ldy; ++o)
                                gpu::apply_epilogue(e, hp, i, o, dots[i * ldy + o], &want[i * ldy + o]);
                        const std::string what =
                            std::string("project ") + std::string(rwkv::dtype_name(t)) + " " + std::to_string(s.rows) +
                            "x" + std::to_string(s.cols) + " n=" + std::to_string(n) + " ldx=" + std::to_string(ldx) +
                            " epilogue " + epi_name(e) + (n > gpu::mv_max_cols ? " (cuBLAS)" : " (mat-vec)");
                        const float atol = 2e-6f * std::sqrt(static_cast<float>(s.cols)) + 1e-6f;
                        check_close(dY.get(), want, atol, 2e-5f, what);
                        if (e == gpu::epilogue::decay) check_close(dY2.get(), want2, atol, 2e-5f, what + " (λ)");
                    }
                }
}

TEST_CASE("cuda layer_norm and group_norm_gate against the reference", "[cuda][ops]") {
    RWKV_REQUIRE_GPU();
    std::mt19937 g(3);
    Ops::Workspace ws;
    rwkv::detail::Workspace rws;
    for (int C : {1, 5, 1000, 2049}) {
        const int n = 3;
        rwkv::LayerNorm ln{rnd(static_cast<std::size_t>(C), g), rnd(static_cast<std::size_t>(C), g)};
        auto x = rnd(static_cast<std::size_t>(n) * C, g, -3.0f, 5.0f);
        std::vector<float> want(x.size());
        Ref::layer_norm(rws, ln, x.data(), want.data(), n);
        dvec dx(x), dout(x.size()), dw(ln.weight), db(ln.bias);
        Ops::layer_norm(ws, dw.p(), db.p(), ln.eps, dx.p(), dout.p(), n, C);
        check_close(dout.get(), want, 2e-5f, 2e-5f, "layer_norm C=" + std::to_string(C));
    }
    for (int N : {1, 8, 13, 64, 100})
        for (int H : {1, 3}) {
            const int n = 4, A = H * N;
            rwkv::GroupNorm gn{rnd(static_cast<std::size_t>(A), g), rnd(static_cast<std::size_t>(A), g), H};
            auto y = rnd(static_cast<std::size_t>(n) * A, g, -4.0f, 4.0f);
            const auto gate = rnd(y.size(), g);
            std::vector<float> want = y;
            Ref::group_norm_gate(rws, gn, want.data(), gate.data(), n);
            dvec dy(y), dg(gate), dw(gn.weight), db(gn.bias);
            Ops::group_norm_gate(ws, dy.p(), dg.p(), n, H, N, dw.p(), db.p(), gn.eps);
            check_close(dy.get(), want, 3e-5f, 3e-5f,
                        "group_norm_gate N=" + std::to_string(N) + " H=" + std::to_string(H));
        }
}

TEST_CASE("cuda ln_shift_mix = LayerNorm + token_shift + lerp/mix per sequence, shift states moved", "[cuda][ops]") {
    RWKV_REQUIRE_GPU();
    std::mt19937 g(11);
    Ops::Workspace ws;
    rwkv::detail::Workspace rws;
    for (int C : {3, 100, 1024})
        for (const std::vector<int>& lens : {std::vector<int>{1}, std::vector<int>{3, 1, 4}, std::vector<int>{2, 2}})
            for (bool lerp : {true, false}) {
                const auto Cs = static_cast<std::size_t>(C);
                int n = 0;
                for (int l : lens) n += l;
                const int P = static_cast<int>(lens.size());
                rwkv::LayerNorm ln{rnd(Cs, g), rnd(Cs, g)};
                const auto x = rnd(static_cast<std::size_t>(n) * Cs, g, -2.0f, 3.0f);
                // Each sequence's state is [pad C][shift C]: the kernel addresses shift at base + offset.
                std::vector<float> states = rnd(static_cast<std::size_t>(P) * 2 * Cs, g);
                std::vector<std::vector<float>> coef;
                for (int s = 0; s < 3; ++s) coef.push_back(rnd(Cs, g, 0.0f, 1.0f));
                // Reference.
                std::vector<float> z(x.size()), prev(x.size());
                Ref::layer_norm(rws, ln, x.data(), z.data(), n);
                std::vector<float> ref_states = states;
                std::vector<rwkv::sequence_rows> seqs;
                for (int p = 0; p < P; ++p)
                    seqs.push_back({lens[static_cast<std::size_t>(p)], ref_states.data() + (2 * p + 1) * Cs, nullptr});
                Ref::token_shift(rws, z.data(), C, seqs, prev.data());
                std::vector<std::vector<float>> want(3, std::vector<float>(x.size()));
                for (int s = 0; s < 3; ++s) {
                    if (lerp)
                        Ref::lerp(rws, z.data(), prev.data(), coef[static_cast<std::size_t>(s)].data(), n, C,
                                  want[s].data());
                    else
                        Ref::mix(rws, z.data(), prev.data(), coef[static_cast<std::size_t>(s)].data(), n, C,
                                 want[s].data());
                }
                // Device.
                dvec dx(x), dw(ln.weight), db(ln.bias), dstates(states), dz(x.size()), dprev(x.size());
                std::vector<dvec> dcoef, dout;
                for (int s = 0; s < 3; ++s) {
                    dcoef.emplace_back(coef[static_cast<std::size_t>(s)]);
                    dout.emplace_back(x.size());
                }
                std::vector<gpu::row_info> rows;
                std::vector<gpu::seq_info> sq;
                int row = 0;
                for (int p = 0; p < P; ++p) {
                    sq.push_back({row, lens[static_cast<std::size_t>(p)], dstates.p() + 2 * p * Cs});
                    for (int t = 0; t < lens[static_cast<std::size_t>(p)]; ++t) rows.push_back({p});
                    row += lens[static_cast<std::size_t>(p)];
                }
                gpu::device_buffer drows(rows.size() * sizeof(gpu::row_info)), dsq(sq.size() * sizeof(gpu::seq_info));
                RWKV_CUDA_CHECK(cudaMemcpy(drows.data(), rows.data(), drows.size(), cudaMemcpyHostToDevice));
                RWKV_CUDA_CHECK(cudaMemcpy(dsq.data(), sq.data(), dsq.size(), cudaMemcpyHostToDevice));
                gpu::legacy_sync();
                gpu::shift_mix_params p;
                p.x = dx.p();
                p.C = C;
                p.ln_w = dw.p();
                p.ln_b = db.p();
                p.eps = ln.eps;
                p.rows = drows.as<gpu::row_info>();
                p.seqs = dsq.as<gpu::seq_info>();
                p.shift_offset = Cs;
                p.count = 3;
                p.lerp = lerp;
                for (int s = 0; s < 3; ++s) {
                    p.coef[s] = dcoef[static_cast<std::size_t>(s)].p();
                    p.out[s] = dout[static_cast<std::size_t>(s)].p();
                }
                p.z_out = dz.p();
                p.prev_out = dprev.p();
                Ops::ln_shift_mix(ws, p, n);
                std::string what = "ln_shift_mix C=" + std::to_string(C) + " sequences of";
                for (int l : lens) what.append(" ").append(std::to_string(l));
                what += lerp ? " (lerp)" : " (mix)";
                check_close(dz.get(), z, 2e-5f, 2e-5f, what + ": z");
                check_close(dprev.get(), prev, 2e-5f, 2e-5f, what + ": prev");
                for (int s = 0; s < 3; ++s)
                    check_close(dout[static_cast<std::size_t>(s)].get(), want[static_cast<std::size_t>(s)], 3e-5f,
                                3e-5f, what + ": output " + std::to_string(s));
                check_close(dstates.get(), ref_states, 2e-5f, 2e-5f, what + ": shift states after");
            }
}

TEST_CASE("cuda wkv (token loop in registers / in memory, chunked) against the reference", "[cuda][ops][wkv]") {
    RWKV_REQUIRE_GPU();
    std::mt19937 g(5);
    Ops::Workspace ws;
    rwkv::detail::Workspace rws;
    double worst = 0;
    for (int N : {1, 8, 13, 64, 100, 128, 160})
        for (const std::vector<int>& lens : {std::vector<int>{1}, std::vector<int>{5, 40, 1}, std::vector<int>{70}})
            for (bool static_decay : {false, true})
                for (bool chunked : {false, true})
                    for (bool fuse : {false, true}) {
                        const int H = 3, A = H * N;
                        const auto As = static_cast<std::size_t>(A), Ns = static_cast<std::size_t>(N);
                        int n = 0;
                        for (int l : lens) n += l;
                        const int P = static_cast<int>(lens.size());
                        const std::size_t rowsA = static_cast<std::size_t>(n) * As;
                        const auto r = rnd(rowsA, g), k = rnd(rowsA, g), v = rnd(rowsA, g), u = rnd(As, g);
                        auto lw = rnd(static_decay ? As : rowsA, g, -8.0f, 5.0f);
                        for (auto& e : lw) e = -std::exp(e);
                        std::vector<float> w(lw.size());
                        for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(lw[i]);
                        const std::size_t stride = static_cast<std::size_t>(static_decay ? 0 : A);
                        const std::size_t per_state = As * Ns + 16;  // [pad 16][H][N][N]
                        auto states = rnd(static_cast<std::size_t>(P) * per_state, g);
                        rwkv::GroupNorm gn{rnd(As, g), rnd(As, g), H};
                        const auto gate = rnd(rowsA, g);
                        // Reference.
                        std::vector<float> ref_states = states, y(rowsA);
                        std::vector<rwkv::sequence_rows> seqs;
                        for (int p = 0; p < P; ++p)
                            seqs.push_back(
                                {lens[static_cast<std::size_t>(p)], nullptr, ref_states.data() + p * per_state + 16});
                        Ref::wkv(rws, {H, N, r.data(), k.data(), v.data(), w.data(), lw.data(), stride, u.data(),
                                       y.data(), seqs});
                        if (fuse) Ref::group_norm_gate(rws, gn, y.data(), gate.data(), n);
                        // Device.
                        dvec dr(r), dk(k), dv(v), du(u), dw(w), dlw(lw), dy(rowsA), dstates(states), dgw(gn.weight),
                            dgb(gn.bias), dgate(gate);
                        std::vector<gpu::seq_info> sq;
                        int row = 0, max_rows = 0;
                        for (int p = 0; p < P; ++p) {
                            sq.push_back({row, lens[static_cast<std::size_t>(p)], dstates.p() + p * per_state});
                            row += lens[static_cast<std::size_t>(p)];
                            max_rows = std::max(max_rows, lens[static_cast<std::size_t>(p)]);
                        }
                        gpu::device_buffer dsq(sq.size() * sizeof(gpu::seq_info));
                        RWKV_CUDA_CHECK(cudaMemcpy(dsq.data(), sq.data(), dsq.size(), cudaMemcpyHostToDevice));
                        gpu::legacy_sync();
                        gpu::wkv_params wp;
                        wp.n_head = H;
                        wp.N = N;
                        wp.r = dr.p();
                        wp.k = dk.p();
                        wp.v = dv.p();
                        wp.w = dw.p();
                        wp.log_w = dlw.p();
                        wp.w_stride = stride;
                        wp.u = du.p();
                        wp.y = dy.p();
                        wp.seqs = dsq.as<gpu::seq_info>();
                        wp.state_offset = 16;
                        if (fuse) {
                            wp.gn_w = dgw.p();
                            wp.gn_b = dgb.p();
                            wp.gate = dgate.p();
                            wp.gn_eps = gn.eps;
                        }
                        ws.chunked_wkv = chunked;
                        const bool fused = Ops::wkv(ws, wp, P, max_rows);
                        if (fuse && !fused)
                            Ops::group_norm_gate(ws, dy.p(), dgate.p(), n, H, N, dgw.p(), dgb.p(), gn.eps);
                        std::string what = "wkv N=" + std::to_string(N) + " sequences of";
                        for (int l : lens) what.append(" ").append(std::to_string(l));
                        what += std::string(static_decay ? " x052 static decay" : " x060 decay") +
                                (chunked && max_rows >= 2 * rwkv::backend::gpu::wkv_chunk_len ? " chunked"
                                                                                              : " token loop") +
                                (fuse ? (fused ? " + fused ln_x·g" : " + ln_x·g kernel") : "");
                        const double ey = rel_rms(dy.get(), y), es = rel_rms(dstates.get(), ref_states);
                        INFO(what << ": output error " << ey << ", state error " << es << " (max |d| / RMS)");
                        CHECK(ey < (fuse ? 1e-3 : 1e-4));  // after GroupNorm: relative to each head's own spread
                        CHECK(es < 1e-4);
                        worst = std::max(worst, es);
                    }
    std::printf("cuda wkv: worst state error vs the reference %.2e (max |d| / RMS)\n", worst);
}

namespace {

template <class T>
const char* tname() {
    return rwkv::scalar_name<T>();
}

// The CPU test's golden check (tests/test_model.cpp) on the GPU, for one configuration.
template <class T>
void check_golden(const Case& k, bool chunked, bool graphs) {
    auto model = rwkv::Model<T, rwkv::cuda>::load(k.model);
    model.set_chunked_wkv(chunked);
    model.set_graphs(graphs);
    INFO("model " << k.name << " as Model<" << tname<T>() << ", cuda>" << (chunked ? " chunked" : " token loop")
                  << (graphs ? " graphs" : " eager"));
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    const auto V = static_cast<std::size_t>(model.config().vocab_size);
    REQUIRE(gold.size() == toks.size() * V);
    auto st = model.new_state();
    float step = 0.0f;
    for (std::size_t t = 0; t < toks.size(); ++t) {
        auto logits = model.forward(toks[t], st);
        REQUIRE(logits.size() == V);
        step = std::max(step, max_abs_diff(logits.data(), gold.data() + t * V, V));
    }
    auto st2 = model.new_state();
    std::vector<float> all(toks.size() * V);
    model.forward_all(toks, st2, all);
    const float span_all = max_abs_diff(all.data(), gold.data(), all.size());
    auto st3 = model.new_state();
    auto last = model.forward(std::span<const rwkv::token>(toks), st3);
    const float span_last = max_abs_diff(last.data(), gold.data() + (toks.size() - 1) * V, V);
    auto st4 = model.new_state();
    model.forward(std::span<const rwkv::token>(toks).first(13), st4);
    auto split = model.forward(std::span<const rwkv::token>(toks).subspan(13), st4);
    const float span_split = max_abs_diff(split.data(), gold.data() + (toks.size() - 1) * V, V);
    float state_rel = 0.0f;
    const auto hs = st.to_host();
    if (k.compare_state) {
        const auto gs = fixtures::read_f32(k.state);
        REQUIRE(gs.size() == hs.data().size());
        state_rel = max_rel_diff(hs.data().data(), gs.data(), gs.size());
        CHECK(state_rel <= 1e-4f);
    }
    const auto hs3 = st3.to_host();
    CHECK(max_rel_diff(hs3.data().data(), hs.data().data(), hs.data().size()) <= 1e-4f);
    std::printf("cuda %-36s %-9s %-10s %-6s step %.2e  all %.2e  last %.2e  split %.2e  state %.2e\n", k.name.c_str(),
                tname<T>(), chunked ? "chunked" : "tokenloop", graphs ? "graphs" : "eager", step, span_all, span_last,
                span_split, state_rel);
    CHECK(step <= 1e-4f);
    CHECK(span_all <= 1e-4f);
    CHECK(span_last <= 1e-4f);
    CHECK(span_split <= 1e-4f);
    if (!k.greedy_logits.empty()) {
        const auto m = fixtures::read_json(k.manifest);
        const auto want = m["greedy"]["ids"].ints<rwkv::token>();
        const auto gl = fixtures::read_f32(k.greedy_logits);
        rwkv::token next = argmax(std::span<const float>(last));
        std::vector<rwkv::token> got;
        float gmax = 0.0f;
        for (std::size_t i = 0; i < want.size(); ++i) {
            got.push_back(next);
            auto lg = model.forward(next, st3);
            gmax = std::max(gmax, max_abs_diff(lg.data(), gl.data() + i * V, V));
            next = argmax(lg);
        }
        CHECK(got == want);
        CHECK(gmax <= 1e-4f);
    }
}

}  // namespace

TEST_CASE("cuda: every fixture reproduces its goldens (fp32 within 1e-4; bf16/fp16 against the upcast goldens)",
          "[cuda][golden]") {
    RWKV_REQUIRE_GPU();
    RWKV_REQUIRE_FIXTURES();
    for (const auto& k : cases()) {
        const bool bf16 = k.name.find(".bf16") != std::string::npos, fp16 = k.name.find(".fp16") != std::string::npos;
        for (bool chunked : {true, false})
            for (bool graphs : {true, false}) {
                if (bf16) check_golden<rwkv::bfloat16>(k, chunked, graphs);
                else if (fp16) check_golden<rwkv::half>(k, chunked, graphs);
                else check_golden<float>(k, chunked, graphs);
            }
    }
}

namespace {

// A random model whose layers all act: the official init zeroes some matrices (output, ffn
// value), which would make the layers identities; those are refilled with uniform values.
template <class T>
rwkv::Model<T> active_cpu_model(rwkv::Config c, std::uint64_t seed) {
    c.finalize();
    auto file = rwkv::detail::random_tensors<float>(c, seed, rwkv::Init::fast);
    std::mt19937 g(static_cast<unsigned>(seed));
    for (auto& t : file.tensors) {
        if (t.shape.size() != 2 || t.type != rwkv::dtype::f32) continue;
        const auto* f = reinterpret_cast<const float*>(t.data.data());
        const auto n = static_cast<std::size_t>(t.numel());
        if (std::any_of(f, f + n, [](float x) { return x != 0.0f; })) continue;
        const float s = 1.0f / std::sqrt(static_cast<float>(t.shape[1]));
        auto buf = std::make_shared<std::vector<float>>(rnd(n, g, -s, s));
        t.data = std::as_bytes(std::span<const float>(*buf));
        t.owner = buf;
    }
    return rwkv::Model<T>::from_tensors(std::move(file));
}

std::vector<rwkv::token> prompt(std::size_t n, int vocab, int seed) {
    std::vector<rwkv::token> t(n);
    for (std::size_t i = 0; i < n; ++i)
        t[i] = static_cast<rwkv::token>((i * 31 + static_cast<std::size_t>(seed) * 7 + 1) %
                                        static_cast<std::size_t>(vocab));
    return t;
}

rwkv::Config shape(rwkv::Version v, int L, int C, int A, int N, int F, int V) {
    rwkv::Config c;
    c.version = v;
    c.n_layer = L;
    c.n_embd = C;
    c.dim_att = A;
    c.head_size = N;
    c.dim_ffn = F;
    c.vocab_size = V;
    return c.finalize();
}

std::string describe(const rwkv::Config& c) {
    return std::string(c.version == rwkv::Version::x052 ? "x052" : "x060") + " L" + std::to_string(c.n_layer) + " C" +
           std::to_string(c.n_embd) + " A" + std::to_string(c.dim_att) + " N" + std::to_string(c.head_size) + " F" +
           std::to_string(c.dim_ffn) + " V" + std::to_string(c.vocab_size);
}

// GPU vs CPU after `T` tokens of prefill and `decode` tokens one at a time: logits and state.
template <class T>
void gpu_vs_cpu(const rwkv::Config& c, std::size_t T_prefill, int decode, float tol, bool fast = false) {
    auto cpu = active_cpu_model<T>(c, 17);
    auto dev = rwkv::Model<T, rwkv::cuda>::from_cpu(cpu);
    dev.set_bf16_prefill(fast);
    const auto toks = prompt(T_prefill, c.vocab_size, 3);
    auto cs = cpu.new_state();
    auto ds = dev.new_state();
    auto cl = cpu.forward(std::span<const rwkv::token>(toks), cs);
    auto dl = dev.forward(std::span<const rwkv::token>(toks), ds);
    float lp = max_rel_diff(dl.data(), cl.data(), cl.size());
    rwkv::token next = argmax(cl);
    float ld = 0.0f;
    for (int i = 0; i < decode; ++i) {
        auto a = cpu.forward(next, cs);
        auto b = dev.forward(next, ds);
        ld = std::max(ld, max_rel_diff(b.data(), a.data(), a.size()));
        next = argmax(a);
    }
    const auto hs = ds.to_host();
    const float st = max_rel_diff(hs.data().data(), cs.data().data(), cs.data().size());
    std::printf("cuda vs cpu %-40s %-9s %s prefill %zu: logits %.2e, decode %d: logits %.2e, state %.2e\n",
                describe(c).c_str(), tname<T>(), fast ? "fast" : "exact", T_prefill, lp, decode, ld, st);
    INFO(describe(c) << " Model<" << tname<T>() << "> " << (fast ? "fast" : "exact") << " prefill " << T_prefill
                     << ": prefill logits " << lp << ", decode logits " << ld << ", state " << st
                     << " (max |gpu - cpu| / max(1, |cpu|))");
    CHECK(lp <= tol);
    CHECK(ld <= tol);
    CHECK(st <= tol);
}

}  // namespace

TEST_CASE("cuda vs cpu on random models of odd shapes (head sizes 8..160, widths off every vector size)",
          "[cuda][random]") {
    RWKV_REQUIRE_GPU();
    using V = rwkv::Version;
    for (const auto& c : {shape(V::x060, 2, 100, 80, 16, 224, 37), shape(V::x052, 2, 136, 136, 8, 200, 301),
                          shape(V::x060, 2, 256, 256, 128, 448, 1000), shape(V::x060, 1, 320, 320, 160, 320, 99),
                          shape(V::x052, 2, 96, 96, 96, 336, 50), shape(V::x060, 3, 64, 64, 32, 96, 4099)}) {
        gpu_vs_cpu<float>(c, 70, 5, 1e-4f);
        gpu_vs_cpu<rwkv::bfloat16>(c, 70, 5, 1e-4f);
        gpu_vs_cpu<rwkv::half>(c, 70, 5, 1e-4f);
    }
}

TEST_CASE("cuda vs cpu at released shapes (Eagle/Finch 0.4B, bf16): state and logits after 512 tokens",
          "[cuda][random][released]") {
    RWKV_REQUIRE_GPU();
    using V = rwkv::Version;
    // 24 layers, C 1024, 512 tokens: both sides are exact fp32 math on the same bf16 weights, in
    // different summation orders; 1e-3 of max(1, |value|) bounds that drift.
    gpu_vs_cpu<rwkv::bfloat16>(shape(V::x052, 24, 1024, 1024, 64, 3584, 65536), 512, 8, 1e-3f);
    gpu_vs_cpu<rwkv::bfloat16>(shape(V::x060, 24, 1024, 1024, 64, 3584, 65536), 512, 8, 1e-3f);
    // The opt-in tensor-core prefill rounds activations to bf16 (CPU: ~1e-1 on logits of std ~1.5).
    gpu_vs_cpu<rwkv::bfloat16>(shape(V::x060, 4, 1024, 1024, 64, 3584, 65536), 512, 0, 0.15f, true);
}

TEST_CASE("cuda forward_batch: batched decode and batched prefill equal per-sequence forwards", "[cuda][batch]") {
    RWKV_REQUIRE_GPU();
    using V = rwkv::Version;
    for (const auto& c : {shape(V::x060, 3, 128, 128, 64, 448, 1000), shape(V::x052, 2, 136, 136, 8, 200, 301)}) {
        auto cpu = active_cpu_model<float>(c, 5);
        auto model = rwkv::Model<float, rwkv::cuda>::from_cpu(cpu);
        const auto Vs = static_cast<std::size_t>(c.vocab_size);
        for (int B : {1, 3, 8, 9, 64}) {
            std::vector<rwkv::CudaState> batched, single;
            for (int b = 0; b < B; ++b) {
                auto s = model.new_state();
                model.forward(prompt(static_cast<std::size_t>(1 + b % 7 * 3), c.vocab_size, b), s);
                batched.push_back(s);
                single.push_back(s);
            }
            std::vector<rwkv::CudaState*> ptrs;
            for (auto& s : batched) ptrs.push_back(&s);
            std::vector<rwkv::token> toks(static_cast<std::size_t>(B));
            for (int b = 0; b < B; ++b) toks[static_cast<std::size_t>(b)] = (b * 13 + 5) % c.vocab_size;
            float worst = 0.0f;
            for (int step = 0; step < 4; ++step) {  // graphs are captured on the second step
                auto rows =
                    model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::CudaState* const>(ptrs));
                REQUIRE(rows.size() == static_cast<std::size_t>(B) * Vs);
                std::vector<float> got(rows.begin(), rows.end());
                for (int b = 0; b < B; ++b) {
                    auto want = model.forward(toks[static_cast<std::size_t>(b)], single[static_cast<std::size_t>(b)]);
                    worst =
                        std::max(worst, max_rel_diff(got.data() + static_cast<std::size_t>(b) * Vs, want.data(), Vs));
                    toks[static_cast<std::size_t>(b)] = argmax(want);
                }
            }
            for (int b = 0; b < B; ++b) {
                const auto x = batched[static_cast<std::size_t>(b)].to_host(),
                           y = single[static_cast<std::size_t>(b)].to_host();
                worst = std::max(worst, max_rel_diff(x.data().data(), y.data().data(), y.data().size()));
            }
            std::printf("cuda forward_batch %s B %2d: worst relative difference to single forwards %.2e\n",
                        describe(c).c_str(), B, worst);
            INFO(describe(c) << " B " << B << " worst |batched - single| / max(1, |single|) " << worst);
            CHECK(worst <= 1e-4f);
        }
        // Batched prefill of prompts of different lengths (one longer than a round) vs one each.
        std::vector<std::vector<rwkv::token>> prompts;
        for (std::size_t len : {1u, 5u, 40u, 600u, 2u})
            prompts.push_back(prompt(len, c.vocab_size, static_cast<int>(len)));
        std::vector<std::span<const rwkv::token>> spans(prompts.begin(), prompts.end());
        std::vector<rwkv::CudaState> states, refs;
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            states.push_back(model.new_state());
            refs.push_back(model.new_state());
        }
        std::vector<rwkv::CudaState*> ptrs;
        for (auto& s : states) ptrs.push_back(&s);
        auto rows = model.forward_batch(std::span<const std::span<const rwkv::token>>(spans),
                                        std::span<rwkv::CudaState* const>(ptrs));
        std::vector<float> got(rows.begin(), rows.end());
        float worst = 0.0f;
        for (std::size_t b = 0; b < prompts.size(); ++b) {
            auto want = model.forward(spans[b], refs[b]);
            worst = std::max(worst, max_rel_diff(got.data() + b * Vs, want.data(), Vs));
            const auto x = states[b].to_host(), y = refs[b].to_host();
            worst = std::max(worst, max_rel_diff(x.data().data(), y.data().data(), y.data().size()));
        }
        std::printf("cuda batched prefill %s: worst relative difference %.2e\n", describe(c).c_str(), worst);
        INFO(describe(c) << " batched prefill worst " << worst);
        CHECK(worst <= 1e-4f);
    }
}

TEST_CASE("cuda state round trip: CPU -> GPU -> CPU continues the conversation exactly", "[cuda][state]") {
    RWKV_REQUIRE_GPU();
    const auto c = shape(rwkv::Version::x060, 2, 128, 128, 64, 448, 1000);
    auto cpu = active_cpu_model<float>(c, 9);
    auto dev = rwkv::Model<float, rwkv::cuda>::from_cpu(cpu);
    const auto a = prompt(30, c.vocab_size, 1), b = prompt(20, c.vocab_size, 2), d = prompt(10, c.vocab_size, 3);
    // Reference: everything on the CPU.
    auto ref = cpu.new_state();
    cpu.forward(std::span<const rwkv::token>(a), ref);
    cpu.forward(std::span<const rwkv::token>(b), ref);
    auto want = cpu.forward(std::span<const rwkv::token>(d), ref);
    std::vector<float> want_logits(want.begin(), want.end());
    // a on the CPU, b on the GPU (from_host), d on the CPU again (to_host).
    auto cs = cpu.new_state();
    cpu.forward(std::span<const rwkv::token>(a), cs);
    auto ds = dev.new_state();
    ds.from_host(cs);
    dev.forward(std::span<const rwkv::token>(b), ds);
    auto back = ds.to_host();
    CHECK(back.model_fingerprint() == cpu.fingerprint());
    auto got = cpu.forward(std::span<const rwkv::token>(d), back);
    const float dl = max_rel_diff(got.data(), want_logits.data(), want_logits.size());
    const float dst = max_rel_diff(back.data().data(), ref.data().data(), ref.data().size());
    std::printf("cuda state round trip: logits %.2e, state %.2e\n", dl, dst);
    CHECK(dl <= 1e-4f);
    CHECK(dst <= 1e-4f);
    // Bytes: a GPU state serialises exactly as its host copy, loads back, and a saved file loads on both.
    const auto bytes = ds.serialize();
    CHECK(bytes == ds.to_host().serialize());
    auto ds2 = dev.new_state();
    ds2.deserialize(bytes, "gpu bytes");
    CHECK(ds2.to_host().data()[0] == ds.to_host().data()[0]);
    CHECK(ds2.serialize() == bytes);
    test_support::temp_dir dir("rwkv-cuda-test");
    const auto path = dir.path / "gpu.state";
    ds.save(path);
    auto on_cpu = cpu.new_state();
    on_cpu.load(path);
    CHECK(on_cpu.serialize() == bytes);
    auto ds3 = dev.new_state();
    ds3.load(path);
    CHECK(ds3.serialize() == bytes);
    // A copy forks: the copy continues independently.
    auto fork = ds;
    dev.forward(d[0], fork);
    CHECK(fork.serialize() != ds.serialize());
    CHECK(ds.serialize() == bytes);
}

TEST_CASE("cuda errors: bad ids, foreign states, empty input leave the state untouched", "[cuda][errors]") {
    RWKV_REQUIRE_GPU();
    const auto c = shape(rwkv::Version::x052, 1, 64, 64, 8, 96, 50);
    auto cpu = active_cpu_model<float>(c, 1);
    auto dev = rwkv::Model<float, rwkv::cuda>::from_cpu(cpu);
    auto s = dev.new_state();
    dev.forward(3, s);
    const auto before = s.serialize();
    CHECK_THROWS_AS(dev.forward(50, s), rwkv::error);
    CHECK_THROWS_AS(dev.forward(-1, s), rwkv::error);
    CHECK_THROWS_AS(dev.forward(std::span<const rwkv::token>(), s), rwkv::error);
    CHECK(s.serialize() == before);
    auto other = rwkv::Model<float, rwkv::cuda>::from_cpu(active_cpu_model<float>(c, 2));
    auto os = other.new_state();
    CHECK_THROWS_WITH(dev.forward(1, os), Catch::Contains("another model"));
    auto wrong = rwkv::Model<float, rwkv::cuda>::from_cpu(
        active_cpu_model<float>(shape(rwkv::Version::x052, 2, 64, 64, 8, 96, 50), 1));
    auto ws = wrong.new_state();
    CHECK_THROWS_WITH(dev.forward(1, ws), Catch::Contains("another shape"));
    rwkv::State foreign(shape(rwkv::Version::x052, 2, 64, 64, 8, 96, 50));
    CHECK_THROWS_WITH(s.from_host(foreign), Catch::Contains("another shape"));
    std::vector<rwkv::CudaState*> dup{&s, &s};
    std::vector<rwkv::token> two{1, 2};
    CHECK_THROWS_WITH(dev.forward_batch(std::span<const rwkv::token>(two), std::span<rwkv::CudaState* const>(dup)),
                      Catch::Contains("share one state"));
    CHECK(s.serialize() == before);
}

TEST_CASE("cuda decode graphs replay exactly what the eager steps compute", "[cuda][graphs]") {
    RWKV_REQUIRE_GPU();
    const auto c = shape(rwkv::Version::x060, 2, 128, 128, 64, 448, 1000);
    auto cpu = active_cpu_model<rwkv::bfloat16>(c, 4);
    auto a = rwkv::Model<rwkv::bfloat16, rwkv::cuda>::from_cpu(cpu);
    auto b = a;  // shares the weights
    b.set_graphs(false);
    auto sa = a.new_state(), sb = b.new_state();
    rwkv::token t = 1;
    for (int i = 0; i < 10; ++i) {  // step 2 captures, steps 3.. replay
        auto la = a.forward(t, sa);
        std::vector<float> x(la.begin(), la.end());
        auto lb = b.forward(t, sb);
        INFO("step " << i);
        REQUIRE(std::equal(x.begin(), x.end(), lb.begin()));
        t = argmax(lb);
    }
    CHECK(sa.serialize() == sb.serialize());
}
