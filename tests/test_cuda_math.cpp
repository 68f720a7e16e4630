// backend/cuda/math.hpp: the per-element math of the CUDA kernels, run on the CPU (no GPU, no
// CUDA toolkit needed). Each kernel of backend/cuda/kernels.cuh is emulated here as the same loops
// over the same math.hpp functions (lanes, chunks, column groups as the kernel maps them), and
// the result is checked against backend/reference.hpp. What this cannot check is what only a GPU
// shows (shuffles, shared memory, launches): tests/cuda/test_cuda.cu does that.

#include <rwkv/backend/cuda/math.hpp>
#include <rwkv/model.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"

namespace {

using test_support::check_close;
using test_support::rel_rms;
using test_support::rnd;

namespace gm = rwkv::backend::gpu;
using Ref = rwkv::backend_ops<rwkv::reference>;
using Ws = rwkv::detail::Workspace;

std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

}  // namespace

TEST_CASE("widening 16 bytes / one element is the weight formats' exact decode", "[cuda_math]") {
    std::mt19937 g(1);
    for (int trial = 0; trial < 20000; ++trial) {
        std::uint32_t q[4];
        for (auto& w : q) w = static_cast<std::uint32_t>(g());
        std::byte raw[16];
        std::memcpy(raw, q, 16);  // little-endian host: the device sees the same words
        float out[8], want[8];
        gm::widen16<gm::wtype::bf16>(q, out);
        for (int i = 0; i < 8; ++i) rwkv::weights::bf16::decode(raw + 2 * i, want + i);
        for (int i = 0; i < 8; ++i) REQUIRE(bits(out[i]) == bits(want[i]));
        for (int i = 0; i < 8; ++i)
            REQUIRE(bits(gm::widen1<gm::wtype::bf16>(raw, static_cast<std::size_t>(i))) == bits(want[i]));
        gm::widen16<gm::wtype::f16>(q, out);
        for (int i = 0; i < 8; ++i) rwkv::weights::f16::decode(raw + 2 * i, want + i);
        for (int i = 0; i < 8; ++i) REQUIRE(bits(out[i]) == bits(want[i]));
        for (int i = 0; i < 8; ++i)
            REQUIRE(bits(gm::widen1<gm::wtype::f16>(raw, static_cast<std::size_t>(i))) == bits(want[i]));
        gm::widen16<gm::wtype::f32>(q, out);
        for (int i = 0; i < 4; ++i) REQUIRE(bits(out[i]) == q[i]);
    }
}

TEST_CASE("activation rounding to bf16 / fp16 equals rwkv::bfloat16 / rwkv::half", "[cuda_math]") {
    std::mt19937 g(2);
    std::vector<float> xs = {0.0f,
                             -0.0f,
                             1.0f,
                             65504.0f,
                             65520.0f,
                             1e-8f,
                             6.1e-5f,
                             3e38f,
                             std::numeric_limits<float>::infinity(),
                             -std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN(),
                             std::numeric_limits<float>::denorm_min()};
    for (int i = 0; i < 200000; ++i) {
        std::uint32_t u = static_cast<std::uint32_t>(g());
        float f;
        std::memcpy(&f, &u, 4);
        xs.push_back(f);
    }
    for (float f : xs) {
        INFO("value bits " << bits(f));
        REQUIRE(gm::round_bf16(f) == rwkv::bfloat16::from_float(f).bits);
        REQUIRE(gm::round_fp16(f) == rwkv::half::from_float(f).bits);
    }
}

TEST_CASE("elementwise math and every epilogue against the reference ops", "[cuda_math]") {
    std::mt19937 g(3);
    Ws ws;
    const int n = 3, C = 37;
    const std::size_t nC = static_cast<std::size_t>(n) * C;
    const auto z = rnd(nC, g, -3, 3), prev = rnd(nC, g, -3, 3), mu = rnd(C, g, 0, 1), r = rnd(nC, g, -6, 6),
               v = rnd(nC, g, -2, 2);
    std::vector<float> want(nC), got(nC);
    Ref::lerp(ws, z.data(), prev.data(), mu.data(), n, C, want.data());
    for (std::size_t i = 0; i < nC; ++i) got[i] = gm::lerp_mix(z[i], prev[i], mu[i % C]);
    check_close(got, want, 0, 0, "lerp");
    Ref::mix(ws, z.data(), prev.data(), mu.data(), n, C, want.data());
    for (std::size_t i = 0; i < nC; ++i) got[i] = gm::diff_mix(z[i], prev[i], mu[i % C]);
    check_close(got, want, 0, 0, "mix");
    want = r;
    Ref::silu(ws, want.data(), nC);
    for (std::size_t i = 0; i < nC; ++i) got[i] = gm::silu(r[i]);
    check_close(got, want, 1e-7f, 1e-6f, "silu");
    want = r;
    Ref::relu_sq(ws, want.data(), nC);
    for (std::size_t i = 0; i < nC; ++i) got[i] = gm::relu_sq(r[i]);
    check_close(got, want, 0, 0, "relu_sq");
    want = z;
    Ref::sigmoid_gate_add(ws, want.data(), r.data(), v.data(), nC);
    for (std::size_t i = 0; i < nC; ++i) got[i] = gm::sigmoid_gate_add(z[i], r[i], v[i]);
    check_close(got, want, 1e-6f, 1e-6f, "sigmoid_gate_add");
    // decay: λ = -exp(d + lora), w = exp(λ), over ω from -12 to +5.
    const auto d = rnd(C, g, -12, 3), lora = rnd(nC, g, -2, 2);
    std::vector<float> w = lora, lw(nC), gw(nC), glw(nC);
    Ref::decay(ws, d.data(), n, C, w.data(), lw.data());
    for (std::size_t i = 0; i < nC; ++i) gm::decay_of(d[i % C], lora[i], gw[i], glw[i]);
    check_close(gw, w, 0, 1e-6f, "decay w");
    check_close(glw, lw, 0, 1e-6f, "decay log_w");
    // The epilogues as the products apply them: index t·ld + o into a/b/y2, c[o].
    const auto dots = rnd(nC, g, -3, 3);
    gm::epilogue_args ep{z.data(), prev.data(), mu.data(), glw.data(), static_cast<std::size_t>(C)};
    for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
        for (std::size_t o = 0; o < static_cast<std::size_t>(C); ++o) {
            const std::size_t i = t * C + o;
            float y = v[i];
            gm::apply_epilogue(gm::epilogue::add, ep, t, o, dots[i], &y);
            REQUIRE(y == v[i] + dots[i]);
            gm::apply_epilogue(gm::epilogue::gate_add, ep, t, o, dots[i], &y);
            REQUIRE(y == gm::sigmoid_gate_add(v[i] + dots[i], z[i], dots[i]));
            gm::apply_epilogue(gm::epilogue::ddlerp, ep, t, o, dots[i], &y);
            REQUIRE(y == gm::ddlerp_out(z[i], prev[i], mu[o], dots[i]));
            gm::apply_epilogue(gm::epilogue::tanh, ep, t, o, dots[i], &y);
            REQUIRE(y == std::tanh(dots[i]));
        }
}

TEST_CASE("x060 ddlerp and decay composed from the epilogues equal the reference ops", "[cuda_math]") {
    std::mt19937 g(4);
    Ws ws;
    const int n = 2, C = 29, Dm = 6, Dw = 5, A = 24;
    const std::size_t nC = static_cast<std::size_t>(n) * C;
    const auto z = rnd(nC, g), prev = rnd(nC, g), maa_x = rnd(C, g, 0, 1);
    auto W1 = rwkv::Weight::encode(rwkv::dtype::f32, rnd(5 * Dm * C, g).data(), 5 * Dm, C);
    rwkv::Weight W2[5];
    std::vector<float> maa[5];
    for (int s = 0; s < 5; ++s) {
        W2[s] = rwkv::Weight::encode(rwkv::dtype::f32, rnd(static_cast<std::size_t>(C) * Dm, g).data(), C, Dm);
        maa[s] = rnd(C, g, 0, 1);
    }
    std::vector<std::vector<float>> want(5, std::vector<float>(nC));
    float* outs[5] = {want[0].data(), want[1].data(), want[2].data(), want[3].data(), want[4].data()};
    Ref::ddlerp(ws, z.data(), prev.data(), n, C, maa_x.data(), W1, W2, maa, outs);
    // As the model runs it on the GPU: zx by the shift-mix kernel, W1 with the tanh epilogue, each
    // W2 slot (a column slice of stride 5 Dm) with the ddlerp epilogue.
    std::vector<float> zx(nC), q(static_cast<std::size_t>(n) * 5 * Dm), dots(q.size());
    for (std::size_t i = 0; i < nC; ++i) zx[i] = gm::diff_mix(z[i], prev[i], maa_x[i % C]);
    Ref::project(ws, W1, zx.data(), n, dots.data());
    gm::epilogue_args none{};
    none.ld = 5 * Dm;
    for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
        for (std::size_t o = 0; o < 5u * Dm; ++o)
            gm::apply_epilogue(gm::epilogue::tanh, none, t, o, dots[t * 5 * Dm + o], &q[t * 5 * Dm + o]);
    for (int s = 0; s < 5; ++s) {
        std::vector<float> slot(static_cast<std::size_t>(n) * Dm), d2(nC), got(nC);
        for (int t = 0; t < n; ++t)
            for (int j = 0; j < Dm; ++j)
                slot[static_cast<std::size_t>(t * Dm + j)] = q[static_cast<std::size_t>(t * 5 * Dm + s * Dm + j)];
        Ref::project(ws, W2[s], slot.data(), n, d2.data());
        gm::epilogue_args ep{z.data(), prev.data(), maa[s].data(), nullptr, static_cast<std::size_t>(C)};
        for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
            for (std::size_t o = 0; o < static_cast<std::size_t>(C); ++o)
                gm::apply_epilogue(gm::epilogue::ddlerp, ep, t, o, d2[t * C + o], &got[t * C + o]);
        check_close(got, want[static_cast<std::size_t>(s)], 1e-6f, 1e-5f, "ddlerp slot " + std::to_string(s));
    }
    // decay_w2's product with the decay epilogue = project + Ref::decay.
    auto Wd2 = rwkv::Weight::encode(rwkv::dtype::f32, rnd(static_cast<std::size_t>(A) * Dw, g).data(), A, Dw);
    const auto hidden = rnd(static_cast<std::size_t>(n) * Dw, g), dvec = rnd(A, g, -8, 2);
    std::vector<float> w(static_cast<std::size_t>(n) * A), lw(w.size()), gw(w.size()), glw(w.size());
    Ref::project(ws, Wd2, hidden.data(), n, w.data());
    const std::vector<float> raw = w;
    Ref::decay(ws, dvec.data(), n, A, w.data(), lw.data());
    gm::epilogue_args ed{nullptr, nullptr, dvec.data(), glw.data(), static_cast<std::size_t>(A)};
    for (std::size_t t = 0; t < static_cast<std::size_t>(n); ++t)
        for (std::size_t o = 0; o < static_cast<std::size_t>(A); ++o)
            gm::apply_epilogue(gm::epilogue::decay, ed, t, o, raw[t * A + o], &gw[t * A + o]);
    check_close(gw, w, 0, 1e-6f, "decay epilogue w");
    check_close(glw, lw, 0, 1e-6f, "decay epilogue log_w");
}

namespace {

// The mat-vec kernel (kernels.cuh matvec_kernel) emulated: 32 lanes, each taking every 32nd
// 16-byte chunk of a padded row, a scalar tail, the lanes summed in the xor-shuffle order.
template <gm::wtype W>
std::vector<float> emulate_matvec(const std::vector<std::byte>& padded, std::size_t ld, int rows, int cols,
                                  const std::vector<float>& X, std::size_t ldx, int n, bool xvec) {
    constexpr int E = gm::elems_per_16<W>;
    constexpr std::size_t es = W == gm::wtype::f32 ? 4 : 2;
    std::vector<float> Y(static_cast<std::size_t>(n) * static_cast<std::size_t>(rows));
    for (int r = 0; r < rows; ++r) {
        const std::byte* wrow = padded.data() + static_cast<std::size_t>(r) * ld * es;
        float acc[32][8] = {};
        const int chunks = cols / E;
        for (int lane = 0; lane < 32; ++lane) {
            for (int c = lane; c < chunks; c += 32) {
                std::uint32_t words[4];
                std::memcpy(words, wrow + static_cast<std::size_t>(c) * 16, 16);
                float wf[E];
                gm::widen16<W>(words, wf);
                for (int b = 0; b < n; ++b) {
                    const float* xb = X.data() + static_cast<std::size_t>(b) * ldx + static_cast<std::size_t>(c) * E;
                    float s = 0.0f;
                    if (xvec) {
                        for (int e = 0; e < E; e += 4)
                            s += wf[e] * xb[e] + wf[e + 1] * xb[e + 1] + wf[e + 2] * xb[e + 2] + wf[e + 3] * xb[e + 3];
                    } else {
                        for (int e = 0; e < E; ++e) s += wf[e] * xb[e];
                    }
                    acc[lane][b] += s;
                }
            }
            for (int e = chunks * E + lane; e < cols; e += 32) {
                const float wv = gm::widen1<W>(wrow, static_cast<std::size_t>(e));
                for (int b = 0; b < n; ++b)
                    acc[lane][b] += wv * X[static_cast<std::size_t>(b) * ldx + static_cast<std::size_t>(e)];
            }
        }
        for (int b = 0; b < n; ++b) {
            float lanes[32];
            for (int l = 0; l < 32; ++l) lanes[l] = acc[l][b];
            for (int off = 16; off > 0; off >>= 1) {
                float next[32];
                for (int l = 0; l < 32; ++l) next[l] = lanes[l] + lanes[l ^ off];
                std::memcpy(lanes, next, sizeof lanes);
            }
            Y[static_cast<std::size_t>(b) * rows + static_cast<std::size_t>(r)] = lanes[0];
        }
    }
    return Y;
}

template <gm::wtype W>
void check_matvec(rwkv::dtype t, std::mt19937& g) {
    Ws ws;
    constexpr std::size_t es = W == gm::wtype::f32 ? 4 : 2, per16 = 16 / es;
    for (int rows : {1, 5, 40})
        for (int cols : {1, 3, 8, 13, 100, 257, 1030})
            for (int n : {1, 3, 8})
                for (int pad : {0, 3}) {
                    const auto values = rnd(static_cast<std::size_t>(rows) * cols, g);
                    const auto Wt = rwkv::Weight::encode(t, values.data(), rows, cols);
                    const std::size_t ld = (static_cast<std::size_t>(cols) + per16 - 1) / per16 * per16;
                    std::vector<std::byte> padded(static_cast<std::size_t>(rows) * ld * es);  // zero padding
                    for (int r = 0; r < rows; ++r)
                        std::memcpy(padded.data() + static_cast<std::size_t>(r) * ld * es, Wt.row(r),
                                    static_cast<std::size_t>(cols) * es);
                    const std::size_t ldx = static_cast<std::size_t>(cols + pad);
                    const auto X = rnd(static_cast<std::size_t>(n) * ldx, g);
                    std::vector<float> Xd(static_cast<std::size_t>(n) * cols), want(static_cast<std::size_t>(n) * rows);
                    for (int b = 0; b < n; ++b)
                        std::copy_n(X.begin() + static_cast<std::ptrdiff_t>(b * ldx), cols,
                                    Xd.begin() + static_cast<std::ptrdiff_t>(b) * cols);
                    Ref::project(ws, Wt, Xd.data(), n, want.data());
                    const bool xvec = ldx % 4 == 0;
                    const auto got = emulate_matvec<W>(padded, ld, rows, cols, X, ldx, n, xvec);
                    check_close(got, want, 2e-6f * std::sqrt(static_cast<float>(cols)) + 1e-6f, 1e-5f,
                                std::string("matvec ") + std::string(rwkv::dtype_name(t)) + " " + std::to_string(rows) +
                                    "x" + std::to_string(cols) + " n=" + std::to_string(n) +
                                    " ldx=" + std::to_string(ldx));
                }
}

}  // namespace

TEST_CASE("the mat-vec kernel's lane / chunk / tail arithmetic equals the reference product", "[cuda_math]") {
    std::mt19937 g(5);
    check_matvec<gm::wtype::f32>(rwkv::dtype::f32, g);
    check_matvec<gm::wtype::bf16>(rwkv::dtype::bf16, g);
    check_matvec<gm::wtype::f16>(rwkv::dtype::f16, g);
}

TEST_CASE("LayerNorm / GroupNorm from two-pass statistics and norm_apply equal the reference", "[cuda_math]") {
    std::mt19937 g(6);
    Ws ws;
    for (int C : {1, 7, 1024, 4099}) {
        rwkv::LayerNorm ln{rnd(static_cast<std::size_t>(C), g), rnd(static_cast<std::size_t>(C), g)};
        const auto x = rnd(static_cast<std::size_t>(C), g, 100, 103);  // a large offset: two passes matter
        std::vector<float> want(x.size()), got(x.size());
        Ref::layer_norm(ws, ln, x.data(), want.data(), 1);
        double sum = 0;  // the kernel: per-thread fp32 partials, combined in double
        for (float v : x) sum += v;
        const float m = static_cast<float>(sum / C);
        double sq = 0;
        for (float v : x) sq += static_cast<double>((v - m) * (v - m));
        const float inv = static_cast<float>(1.0 / std::sqrt(sq / C + static_cast<double>(ln.eps)));
        for (std::size_t i = 0; i < x.size(); ++i) got[i] = gm::norm_apply(x[i], m, inv, ln.weight[i], ln.bias[i]);
        check_close(got, want, 2e-5f, 1e-5f, "layer_norm C=" + std::to_string(C));
    }
    const int H = 3, N = 13, A = H * N;
    rwkv::GroupNorm gn{rnd(A, g), rnd(A, g), H};
    const auto y = rnd(A, g, -4, 4), gate = rnd(A, g);
    std::vector<float> want = y, got(A);
    Ref::group_norm_gate(ws, gn, want.data(), gate.data(), 1);
    for (int h = 0; h < H; ++h) {
        double s = 0, sq = 0;
        for (int i = 0; i < N; ++i) s += y[static_cast<std::size_t>(h * N + i)];
        const float m = static_cast<float>(s / N);
        for (int i = 0; i < N; ++i) {
            const float d = y[static_cast<std::size_t>(h * N + i)] - m;
            sq += static_cast<double>(d * d);
        }
        const float inv = gm::inv_std(static_cast<float>(sq / N), gn.eps);
        for (int i = 0; i < N; ++i) {
            const auto o = static_cast<std::size_t>(h * N + i);
            got[o] = gm::norm_apply(y[o], m, inv, gn.weight[o], gn.bias[o]) * gate[o];
        }
    }
    check_close(got, want, 3e-6f, 1e-5f, "group_norm_gate");
}

namespace {

// One layer's WKV input for H heads of N over T tokens (λ = -exp(ω), directly).
struct Seq {
    int H, N, T;
    std::size_t A;
    std::vector<float> r, k, v, lw, w, u, S0;
    Seq(int H_, int N_, int T_, float lo, float hi, unsigned seed, bool static_decay)
        : H(H_), N(N_), T(T_), A(static_cast<std::size_t>(H_ * N_)) {
        std::mt19937 g(seed);
        const std::size_t n = static_cast<std::size_t>(T) * A;
        r = rnd(n, g);
        k = rnd(n, g);
        v = rnd(n, g);
        u = rnd(A, g);
        S0 = rnd(A * static_cast<std::size_t>(N), g);
        lw = rnd(static_decay ? A : n, g, lo, hi);
        for (auto& e : lw) e = -std::exp(e);
        w.resize(lw.size());
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(lw[i]);
    }
};

// fp64 recurrence (spec 4.5) from the same λ.
void recurrence64(const Seq& s, std::size_t stride, std::vector<double>& y, std::vector<double>& S) {
    const auto N = static_cast<std::size_t>(s.N);
    S.assign(s.S0.begin(), s.S0.end());
    y.assign(static_cast<std::size_t>(s.T) * s.A, 0.0);
    for (std::size_t t = 0; t < static_cast<std::size_t>(s.T); ++t)
        for (std::size_t h = 0; h < static_cast<std::size_t>(s.H); ++h)
            for (std::size_t i = 0; i < N; ++i) {
                const std::size_t c = h * N + i, row = t * s.A;
                const double ri = s.r[row + c], ki = s.k[row + c], ui = s.u[c];
                const double wi = std::exp(double(s.lw[t * stride + c]));
                double* Si = &S[(h * N + i) * N];
                for (std::size_t j = 0; j < N; ++j) {
                    const double vj = s.v[row + h * N + j];
                    y[row + h * N + j] += ri * (Si[j] + ui * ki * vj);
                    Si[j] = wi * Si[j] + ki * vj;
                }
            }
}

// wkv_seq_kernel emulated: thread j of block h holds column j (registers: NMAX = 64; or memory).
template <int NMAX>
void emulate_token_loop(const Seq& s, std::size_t stride, std::vector<float>& y, std::vector<float>& S) {
    const auto N = static_cast<std::size_t>(s.N);
    y.assign(static_cast<std::size_t>(s.T) * s.A, 0.0f);
    for (std::size_t h = 0; h < static_cast<std::size_t>(s.H); ++h) {
        float* Sh = S.data() + h * N * N;
        std::vector<std::array<float, (NMAX > 0 ? NMAX : 1)>> col(N);
        if constexpr (NMAX > 0)
            for (std::size_t j = 0; j < N; ++j)
                for (std::size_t i = 0; i < N; ++i) col[j][i] = Sh[i * N + j];
        for (std::size_t t = 0; t < static_cast<std::size_t>(s.T); ++t) {
            const std::size_t o = t * s.A + h * N;
            const float* rs = s.r.data() + o;
            const float* ks = s.k.data() + o;
            const float* ws = s.w.data() + t * stride + h * N;
            const float bonus = gm::wkv_bonus(s.N, rs, s.u.data() + h * N, ks);
            for (std::size_t j = 0; j < N; ++j) {
                if constexpr (NMAX > 0) {
                    float reg[NMAX];
                    std::copy(col[j].begin(), col[j].end(), reg);
                    y[o + j] = gm::wkv_column_step<NMAX>(s.N, rs, ks, ws, bonus, s.v[o + j], reg);
                    std::copy(reg, reg + NMAX, col[j].begin());
                } else {
                    y[o + j] = gm::wkv_column_step_mem(s.N, rs, ks, ws, bonus, s.v[o + j], Sh + j, N);
                }
            }
        }
        if constexpr (NMAX > 0)
            for (std::size_t j = 0; j < N; ++j)
                for (std::size_t i = 0; i < N; ++i) Sh[i * N + j] = col[j][i];
    }
}

// wkv_chunk_kernel emulated: block (h, column group of JB) with its shared arrays, chunk by chunk.
void emulate_chunked(const Seq& s, std::size_t stride, std::vector<float>& y, std::vector<float>& S) {
    constexpr int Q = gm::wkv_chunk_len, JB = 16;
    const int N = s.N;
    const auto Ns = static_cast<std::size_t>(N);
    y.assign(static_cast<std::size_t>(s.T) * s.A, 0.0f);
    std::vector<float> rs(Q * Ns), ks(Q * Ns), ls(Q * Ns), Ws(Q * Ns), Rt(Q * Ns), Kb(Q * Ns), Vs(Q * JB), Ss(Ns * JB),
        Am(Q * Q), eG(Ns);
    for (int h = 0; h < s.H; ++h)
        for (int j0 = 0; j0 < N; j0 += JB) {
            const int jb = std::min(JB, N - j0);
            const std::size_t ho = static_cast<std::size_t>(h) * Ns;
            float* Sh = S.data() + ho * Ns;
            const float* us = s.u.data() + ho;
            for (int i = 0; i < N; ++i)
                for (int jj = 0; jj < jb; ++jj)
                    Ss[static_cast<std::size_t>(i * JB + jj)] = Sh[static_cast<std::size_t>(i) * Ns + j0 + jj];
            for (int t0 = 0; t0 < s.T; t0 += Q) {
                const int n = std::min(Q, s.T - t0);
                for (int a = 0; a < n; ++a)
                    for (int i = 0; i < N; ++i) {
                        const auto row = static_cast<std::size_t>(t0 + a);
                        const auto e = static_cast<std::size_t>(a * N + i);
                        rs[e] = s.r[row * s.A + ho + i];
                        ks[e] = s.k[row * s.A + ho + i];
                        ls[e] = s.lw[row * stride + ho + i];
                    }
                for (int a = 0; a < n; ++a)
                    for (int jj = 0; jj < jb; ++jj)
                        Vs[static_cast<std::size_t>(a * JB + jj)] =
                            s.v[static_cast<std::size_t>(t0 + a) * s.A + ho + j0 + jj];
                for (int i = 0; i < N; ++i)
                    gm::wkv_chunk_channel(i, n, N, rs.data(), ks.data(), ls.data(), Rt.data(), Kb.data(), Ws.data(),
                                          eG.data());
                for (int e = 0; e < Q * Q; ++e) {
                    const int a = e / Q, b = e % Q;
                    Am[static_cast<std::size_t>(e)] =
                        (a < n && b < n) ? gm::wkv_chunk_pair(a, b, N, rs.data(), ks.data(), us, Ws.data()) : 0.0f;
                }
                for (int a = 0; a < n; ++a)
                    for (int jj = 0; jj < jb; ++jj)
                        y[static_cast<std::size_t>(t0 + a) * s.A + ho + j0 + jj] =
                            gm::wkv_chunk_out(a, jj, N, Rt.data(), Ss.data(), JB, Am.data(), Vs.data(), JB);
                for (int i = 0; i < N; ++i)
                    for (int jj = 0; jj < jb; ++jj)
                        Ss[static_cast<std::size_t>(i * JB + jj)] =
                            gm::wkv_chunk_state(i, jj, n, N, eG.data(), Ss.data(), JB, Kb.data(), Vs.data(), JB);
            }
            for (int i = 0; i < N; ++i)
                for (int jj = 0; jj < jb; ++jj)
                    Sh[static_cast<std::size_t>(i) * Ns + j0 + jj] = Ss[static_cast<std::size_t>(i * JB + jj)];
        }
}

}  // namespace

TEST_CASE("token-loop WKV columns (registers and memory) match the fp64 recurrence", "[cuda_math][wkv]") {
    unsigned seed = 1;
    for (bool static_decay : {false, true})
        for (int N : {1, 8, 13, 64, 100})
            for (int T : {1, 2, 37}) {
                const Seq s(2, N, T, -8, 5, seed++, static_decay);
                const std::size_t stride = static_decay ? 0 : s.A;
                std::vector<double> y64, S64;
                recurrence64(s, stride, y64, S64);
                std::vector<float> y, S = s.S0;
                if (N <= 64) emulate_token_loop<64>(s, stride, y, S);
                else emulate_token_loop<0>(s, stride, y, S);
                INFO("N=" << N << " T=" << T << (static_decay ? " static decay" : ""));
                CHECK(rel_rms(y, y64) < 1e-5);
                CHECK(rel_rms(S, S64) < 1e-5);
            }
}

TEST_CASE("chunked WKV (column groups, chunks of 16) matches the fp64 recurrence over decays from 1 to exp(-148)",
          "[cuda_math][wkv]") {
    struct Range {
        float lo, hi;
    };
    double worst_y = 0, worst_s = 0;
    unsigned seed = 100;
    for (bool static_decay : {false, true})
        for (Range w : {Range{-8, 5}, Range{-12, -6}, Range{2, 4}})
            for (int N : {5, 8, 64})
                for (int T : {1, 15, 16, 17, 100}) {
                    INFO("omega in [" << w.lo << ", " << w.hi << "] N=" << N << " T=" << T
                                      << (static_decay ? " static decay" : ""));
                    const Seq s(2, N, T, w.lo, w.hi, seed++, static_decay);
                    const std::size_t stride = static_decay ? 0 : s.A;
                    std::vector<double> y64, S64;
                    recurrence64(s, stride, y64, S64);
                    std::vector<float> y, S = s.S0;
                    emulate_chunked(s, stride, y, S);
                    bool finite = true;
                    for (float e : y) finite = finite && std::isfinite(e);
                    for (float e : S) finite = finite && std::isfinite(e);
                    REQUIRE(finite);
                    const double ey = rel_rms(y, y64), es = rel_rms(S, S64);
                    CHECK(ey < 1e-4);
                    CHECK(es < 1e-4);
                    worst_y = std::max(worst_y, ey);
                    worst_s = std::max(worst_s, es);
                }
    WARN("GPU chunked WKV (emulated) vs fp64: max output error " << worst_y << ", max state error " << worst_s
                                                                 << " (relative to RMS)");
}
