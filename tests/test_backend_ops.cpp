// Every op of the vocabulary (backend.hpp) on the CPU backend against the plain reference
// backend, on random inputs, for every weight format in weights/list.hpp and odd shapes (head
// sizes 1-128, widths that are not multiples of any vector length). CTest runs this file once
// per CPU path (RWKV_ISA=generic, avx2, and the best one), so every SIMD path is covered. A new
// backend adds one line to the TEMPLATE_TEST_CASE lists below.

#include <rwkv/model.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compare.hpp"

namespace {

using test_support::check_close;
using test_support::rnd;

using Ref = rwkv::backend_ops<rwkv::reference>;
using Ws = rwkv::detail::Workspace;

rwkv::Config config(int C, int N, int A, int F, int Dm, int Dw, int V) {
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 1;
    c.n_embd = C;
    c.head_size = N;
    c.dim_att = A;
    c.n_head = A / N;
    c.dim_ffn = F;
    c.dim_lora_mix = Dm;
    c.dim_lora_decay = Dw;
    c.vocab_size = V;
    return c;
}

struct Fixture {
    Ws cpu_ws, ref_ws;
    rwkv::backend::cpu::ThreadPool pool{2};
    explicit Fixture(const rwkv::Config& c, int n, bool chunked = false) {
        cpu_ws.reserve(c, n);
        ref_ws.reserve(c, n);
        cpu_ws.pool = &pool;
        cpu_ws.chunked_wkv = chunked;
    }
};

// Every weight format of the list, as a dtype.
std::vector<rwkv::dtype> all_formats() {
    std::vector<rwkv::dtype> out;
#define RWKV_TEST_FORMAT(name) out.push_back(rwkv::dtype::name);
    RWKV_WEIGHT_FORMATS(RWKV_TEST_FORMAT)
#undef RWKV_TEST_FORMAT
    return out;
}

}  // namespace

TEMPLATE_TEST_CASE("project and project_many match the reference for every format and shape", "[ops]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(1);
    for (rwkv::dtype t : all_formats()) {
        const int be = rwkv::dtype_block_elems(t);
        for (int cols : {be, 3 * be, 17 * be > 256 ? 2 * be : 17 * be, be == 1 ? 131 : 5 * be}) {
            for (int rows : {1, 7, 50}) {
                for (int n : {1, 2, 5, 70}) {
                    INFO(rwkv::dtype_name(t) << " rows " << rows << " cols " << cols << " n " << n);
                    const auto wv = rnd(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), g);
                    const auto W = rwkv::Weight::encode(t, wv.data(), rows, cols);
                    const auto X = rnd(static_cast<std::size_t>(n) * static_cast<std::size_t>(cols), g);
                    std::vector<float> y(static_cast<std::size_t>(n) * static_cast<std::size_t>(rows)), want(y.size());
                    Fixture f(config(8, 8, 8, 8, 1, 1, 8), n);
                    B::project(f.cpu_ws, W, X.data(), n, y.data());
                    Ref::project(f.ref_ws, W, X.data(), n, want.data());
                    // fp32 sums of `cols` products of magnitude <= 1: error ~ cols·2^-24.
                    check_close(y, want, 2e-6f * static_cast<float>(cols), 1e-5f, "project");
                    std::vector<float> y2(y.size(), 0.0f), y3(y.size(), 0.0f);
                    B::project_many(f.cpu_ws, {{&W, X.data(), y2.data()}, {&W, X.data(), y3.data()}}, n);
                    CHECK(y2 == y);
                    CHECK(y3 == y);
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("decode-batch rows project bit for bit like one row at a time, every format", "[ops][batch]",
                   rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(3);
    for (rwkv::dtype t : all_formats()) {
        const int be = rwkv::dtype_block_elems(t);
        for (int cols : {be, be == 1 ? 131 : 5 * be}) {
            for (int rows : {1, 7, 50}) {
                for (int n : {2, 5, 70}) {
                    INFO(rwkv::dtype_name(t) << " rows " << rows << " cols " << cols << " n " << n);
                    const auto wv = rnd(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols), g);
                    const auto W = rwkv::Weight::encode(t, wv.data(), rows, cols);
                    const auto X = rnd(static_cast<std::size_t>(n) * static_cast<std::size_t>(cols), g);
                    const auto R = static_cast<std::size_t>(rows), K = static_cast<std::size_t>(cols);
                    std::vector<float> y(static_cast<std::size_t>(n) * R), one(y.size()), want(y.size());
                    Fixture f(config(8, 8, 8, 8, 1, 1, 8), n);
                    for (int v = 0; v < n; ++v)
                        B::project(f.cpu_ws, W, X.data() + static_cast<std::size_t>(v) * K, 1,
                                   one.data() + static_cast<std::size_t>(v) * R);
                    f.cpu_ws.one_token_rows = true;  // as Model::forward_batch sets it for a decode round
                    B::project(f.cpu_ws, W, X.data(), n, y.data());
                    CHECK(std::memcmp(y.data(), one.data(), y.size() * sizeof(float)) == 0);
                    std::vector<float> y2(y.size(), 0.0f), y3(y.size(), 0.0f);
                    B::project_many(f.cpu_ws, {{&W, X.data(), y2.data()}, {&W, X.data(), y3.data()}}, n);
                    CHECK(std::memcmp(y2.data(), one.data(), y.size() * sizeof(float)) == 0);
                    CHECK(std::memcmp(y3.data(), one.data(), y.size() * sizeof(float)) == 0);
                    Ref::project(f.ref_ws, W, X.data(), n, want.data());
                    check_close(y, want, 2e-6f * static_cast<float>(cols), 1e-5f, "project");
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("elementwise ops, norms and token shift match the reference", "[ops]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(2);
    for (int C : {1, 5, 64, 131}) {
        for (int n : {1, 3, 9}) {
            INFO("C " << C << " n " << n);
            const auto N = static_cast<std::size_t>(n) * static_cast<std::size_t>(C);
            Fixture f(config(C, 1, C, C, 1, 1, 8), n);
            const auto z = rnd(N, g, -3, 3), m = rnd(static_cast<std::size_t>(C), g, 0, 1);
            // token_shift
            auto shift_a = rnd(static_cast<std::size_t>(C), g), shift_b = shift_a;
            std::vector<float> prev_a(N), prev_b(N);
            const rwkv::sequence_rows qa{n, shift_a.data(), nullptr}, qb{n, shift_b.data(), nullptr};
            B::token_shift(f.cpu_ws, z.data(), C, std::span<const rwkv::sequence_rows>(&qa, 1), prev_a.data());
            Ref::token_shift(f.ref_ws, z.data(), C, std::span<const rwkv::sequence_rows>(&qb, 1), prev_b.data());
            CHECK(prev_a == prev_b);
            CHECK(shift_a == shift_b);
            // lerp, mix
            std::vector<float> a(N), b(N);
            B::lerp(f.cpu_ws, z.data(), prev_a.data(), m.data(), n, C, a.data());
            Ref::lerp(f.ref_ws, z.data(), prev_a.data(), m.data(), n, C, b.data());
            CHECK(a == b);
            B::mix(f.cpu_ws, z.data(), prev_a.data(), m.data(), n, C, a.data());
            Ref::mix(f.ref_ws, z.data(), prev_a.data(), m.data(), n, C, b.data());
            CHECK(a == b);
            // tanh, silu, relu_sq
            a = z, b = z;
            B::tanh(f.cpu_ws, a.data(), N);
            Ref::tanh(f.ref_ws, b.data(), N);
            check_close(a, b, 1e-7f, 1e-6f, "tanh");
            a = z, b = z;
            B::silu(f.cpu_ws, a.data(), N);
            Ref::silu(f.ref_ws, b.data(), N);
            check_close(a, b, 1e-7f, 1e-6f, "silu");
            a = z, b = z;
            B::relu_sq(f.cpu_ws, a.data(), N);
            Ref::relu_sq(f.ref_ws, b.data(), N);
            CHECK(a == b);
            // sigmoid_gate_add, residual_add
            const auto r = rnd(N, g, -4, 4), v = rnd(N, g);
            a = z, b = z;
            B::sigmoid_gate_add(f.cpu_ws, a.data(), r.data(), v.data(), N);
            Ref::sigmoid_gate_add(f.ref_ws, b.data(), r.data(), v.data(), N);
            check_close(a, b, 1e-6f, 1e-6f, "sigmoid_gate_add");
            a = z, b = z;
            B::residual_add(f.cpu_ws, a.data(), v.data(), N);
            Ref::residual_add(f.ref_ws, b.data(), v.data(), N);
            CHECK(a == b);
            // layer_norm (offset inputs: the two-pass statistics must not cancel)
            rwkv::LayerNorm ln{rnd(static_cast<std::size_t>(C), g), rnd(static_cast<std::size_t>(C), g)};
            auto zo = z;
            for (auto& x : zo) x += 100.0f;
            B::layer_norm(f.cpu_ws, ln, zo.data(), a.data(), n);
            Ref::layer_norm(f.ref_ws, ln, zo.data(), b.data(), n);
            if (C > 1) check_close(a, b, 2e-4f, 1e-4f, "layer_norm");
            // group_norm_gate over every head size that divides C
            for (int groups : {1, C}) {
                rwkv::GroupNorm gn{rnd(static_cast<std::size_t>(C), g), rnd(static_cast<std::size_t>(C), g), groups};
                a = z, b = z;
                B::group_norm_gate(f.cpu_ws, gn, a.data(), r.data(), n);
                Ref::group_norm_gate(f.ref_ws, gn, b.data(), r.data(), n);
                check_close(a, b, 1e-5f, 1e-5f, "group_norm_gate");
            }
            // decay: λ = -exp(d + ω), w = exp(λ)
            const auto d = rnd(static_cast<std::size_t>(C), g, -8, 2), om = rnd(N, g, -2, 2);
            std::vector<float> wa = om, wb = om, la(N), lb(N);
            B::decay(f.cpu_ws, d.data(), n, C, wa.data(), la.data());
            Ref::decay(f.ref_ws, d.data(), n, C, wb.data(), lb.data());
            check_close(wa, wb, 1e-7f, 1e-6f, "decay w");
            check_close(la, lb, 1e-7f, 1e-6f, "decay log_w");
        }
    }
}

TEMPLATE_TEST_CASE("embed and head match the reference for every format", "[ops]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(3);
    for (rwkv::dtype t : all_formats()) {
        const int C = rwkv::dtype_block_elems(t) == 1 ? 37 : 2 * rwkv::dtype_block_elems(t);
        const int V = 11, n = 3;
        INFO(rwkv::dtype_name(t));
        const auto ev = rnd(static_cast<std::size_t>(V) * static_cast<std::size_t>(C), g);
        const auto E = rwkv::Weight::encode(t, ev.data(), V, C);
        const std::vector<rwkv::token> toks = {0, 10, 4};
        std::vector<float> a(static_cast<std::size_t>(n) * static_cast<std::size_t>(C)), b(a.size());
        Fixture f(config(C, 1, C, C, 1, 1, V), n);
        B::embed(f.cpu_ws, E, toks, a.data());
        Ref::embed(f.ref_ws, E, toks, b.data());
        CHECK(a == b);
        rwkv::LayerNorm ln{rnd(static_cast<std::size_t>(C), g), rnd(static_cast<std::size_t>(C), g)};
        std::vector<float> za(a.size()), zb(a.size()), la(static_cast<std::size_t>(n) * V), lb(la.size());
        B::head(f.cpu_ws, ln, E, a.data(), n, za.data(), la.data());
        Ref::head(f.ref_ws, ln, E, a.data(), n, zb.data(), lb.data());
        check_close(la, lb, 2e-5f * static_cast<float>(C), 1e-4f, "head");
    }
}

TEMPLATE_TEST_CASE("ddlerp matches the reference, including LoRA widths larger than dim_att", "[ops]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(4);
    struct Shape {
        int C, Dm;
    };
    for (rwkv::dtype t : {rwkv::dtype::f32, rwkv::dtype::bf16, rwkv::dtype::f16}) {
        for (Shape s : {Shape{16, 3}, Shape{24, 40}, Shape{64, 32}}) {
            for (int n : {1, 4, 130}) {
                INFO(rwkv::dtype_name(t) << " C " << s.C << " Dm " << s.Dm << " n " << n);
                const auto NC = static_cast<std::size_t>(n) * static_cast<std::size_t>(s.C);
                const auto z = rnd(NC, g), prev = rnd(NC, g), mx = rnd(static_cast<std::size_t>(s.C), g, 0, 1);
                const auto w1v = rnd(static_cast<std::size_t>(5 * s.Dm * s.C), g, -0.5f, 0.5f);
                const auto W1 = rwkv::Weight::encode(t, w1v.data(), 5 * s.Dm, s.C);
                rwkv::Weight W2[5];
                std::vector<float> maa[5];
                for (int k = 0; k < 5; ++k) {
                    const auto w2v = rnd(static_cast<std::size_t>(s.C * s.Dm), g, -0.5f, 0.5f);
                    W2[k] = rwkv::Weight::encode(t, w2v.data(), s.C, s.Dm);
                    maa[k] = rnd(static_cast<std::size_t>(s.C), g, 0, 1);
                }
                // dim_att 8 < Dm: nothing may borrow an A-sized buffer for the LoRA.
                Fixture f(config(s.C, 8, 8, 8, s.Dm, 4, 8), n);
                std::vector<std::vector<float>> outa(5, std::vector<float>(NC)), outb = outa;
                float* pa[5];
                float* pb[5];
                for (std::size_t k = 0; k < 5; ++k) pa[k] = outa[k].data(), pb[k] = outb[k].data();
                B::ddlerp(f.cpu_ws, z.data(), prev.data(), n, s.C, mx.data(), W1, W2, maa, pa);
                Ref::ddlerp(f.ref_ws, z.data(), prev.data(), n, s.C, mx.data(), W1, W2, maa, pb);
                for (int k = 0; k < 5; ++k)
                    check_close(outa[static_cast<std::size_t>(k)], outb[static_cast<std::size_t>(k)], 1e-5f, 1e-5f,
                                "ddlerp slot " + std::to_string(k));
            }
        }
    }
}

TEMPLATE_TEST_CASE("wkv matches the reference for head sizes 1-128, spans and static decay", "[ops]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(5);
    for (int N : {1, 3, 8, 17, 64, 128}) {
        for (int H : {1, 3}) {
            for (int n : {1, 2, 33}) {
                for (bool chunked : {false, true}) {
                    for (bool static_decay : {false, true}) {
                        INFO("N " << N << " H " << H << " n " << n << " chunked " << chunked << " static "
                                  << static_decay);
                        const int A = H * N;
                        const auto nA = static_cast<std::size_t>(n) * static_cast<std::size_t>(A);
                        const auto r = rnd(nA, g), k = rnd(nA, g), v = rnd(nA, g),
                                   u = rnd(static_cast<std::size_t>(A), g);
                        auto lam = rnd(static_decay ? static_cast<std::size_t>(A) : nA, g, -6, -0.01f);
                        std::vector<float> w(lam.size());
                        for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::exp(lam[i]);
                        const std::size_t stride = static_decay ? 0 : static_cast<std::size_t>(A);
                        auto Sa = rnd(static_cast<std::size_t>(H) * N * N, g), Sb = Sa;
                        std::vector<float> ya(nA), yb(nA);
                        Fixture f(config(A, N, A, A, 1, 1, 8), n, chunked);
                        const rwkv::sequence_rows qa{n, nullptr, Sa.data()}, qb{n, nullptr, Sb.data()};
                        B::wkv(f.cpu_ws, {H, N, r.data(), k.data(), v.data(), w.data(), lam.data(), stride, u.data(),
                                          ya.data(), std::span<const rwkv::sequence_rows>(&qa, 1)});
                        Ref::wkv(f.ref_ws, {H, N, r.data(), k.data(), v.data(), w.data(), lam.data(), stride, u.data(),
                                            yb.data(), std::span<const rwkv::sequence_rows>(&qb, 1)});
                        const float scale = static_cast<float>(N) * static_cast<float>(n);
                        check_close(ya, yb, 2e-6f * scale, 1e-5f, "wkv y");
                        check_close(Sa, Sb, 2e-6f * scale, 1e-5f, "wkv state");
                    }
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("token_shift and wkv restart at every sequence of a batch", "[ops][batch]", rwkv::cpu) {
    using B = rwkv::backend_ops<TestType>;
    std::mt19937 g(6);
    const int H = 2, N = 8, A = H * N;
    const std::vector<int> lens = {1, 3, 1, 17, 2};
    int n = 0;
    for (int l : lens) n += l;
    const auto nA = static_cast<std::size_t>(n) * A;
    const auto r = rnd(nA, g), k = rnd(nA, g), v = rnd(nA, g), u = rnd(A, g), z = rnd(nA, g);
    const auto lam = rnd(nA, g, -5, -0.01f);
    std::vector<float> w(nA);
    for (std::size_t i = 0; i < nA; ++i) w[i] = std::exp(lam[i]);
    for (bool chunked : {false, true}) {
        Fixture f(config(A, N, A, A, 1, 1, 8), n, chunked);
        std::vector<std::vector<float>> Sa, Sb, sa, sb;
        std::vector<rwkv::sequence_rows> qa, qb;
        for (std::size_t q = 0; q < lens.size(); ++q) {
            Sa.push_back(rnd(static_cast<std::size_t>(H) * N * N, g));
            Sb.push_back(Sa.back());
            sa.push_back(rnd(A, g));
            sb.push_back(sa.back());
        }
        for (std::size_t q = 0; q < lens.size(); ++q) {
            qa.push_back({lens[q], sa[q].data(), Sa[q].data()});
            qb.push_back({lens[q], sb[q].data(), Sb[q].data()});
        }
        std::vector<float> ya(nA), yb(nA), pa(nA), pb(nA);
        B::token_shift(f.cpu_ws, z.data(), A, qa, pa.data());
        Ref::token_shift(f.ref_ws, z.data(), A, qb, pb.data());
        CHECK(pa == pb);
        CHECK(sa == sb);
        B::wkv(f.cpu_ws, {H, N, r.data(), k.data(), v.data(), w.data(), lam.data(), static_cast<std::size_t>(A),
                          u.data(), ya.data(), qa});
        Ref::wkv(f.ref_ws, {H, N, r.data(), k.data(), v.data(), w.data(), lam.data(), static_cast<std::size_t>(A),
                            u.data(), yb.data(), qb});
        check_close(ya, yb, 1e-4f, 1e-5f, "batched wkv y");
        for (std::size_t q = 0; q < lens.size(); ++q) check_close(Sa[q], Sb[q], 1e-4f, 1e-5f, "batched wkv state");
    }
}

TEST_CASE("RWKV_ISA caps every CPU kernel, the WKV included", "[ops][isa]") {
    using namespace rwkv::backend::cpu;
    const char* env = std::getenv("RWKV_ISA");
    const std::string want = env ? env : "";
    INFO("RWKV_ISA=" << want << ", active " << isa_name(active_isa()));
    if (want == "generic") {
        CHECK(active_isa() == Isa::generic);
        CHECK((wkv_best_isa() == wkv_isa::xsimd || wkv_best_isa() == wkv_isa::scalar));
    } else if (want == "avx2") {
        CHECK(active_isa() <= Isa::avx2);
        CHECK(wkv_best_isa() != wkv_isa::avx512);
    } else {
        CHECK(active_isa() == detect_isa());
    }
}
