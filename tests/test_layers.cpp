// Each layer (TimeMix5, TimeMix6, ChannelMix) on tiny random models against the same layer on
// the reference backend, one layer at a time with random inputs and states, so a layer bug is
// located without the goldens; and whole models on both backends. Shapes where every dimension
// differs (Dm > A, Dw > A, F < C, V < C, A != C, head size 1..N) catch scratch sized from the
// wrong dimension.

#include <rwkv/model.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace {

// Every official tensor of shape c with random values (not the training init, whose zero
// output matrices would make every layer the identity).
rwkv::io::tensor_file random_file(rwkv::Config c, unsigned seed) {
    c.finalize();
    std::mt19937 g(seed);
    rwkv::detail::TensorSetBuilder b("random test model");
    for (const auto& t : rwkv::official_tensors(c)) {
        std::size_t n = 1;
        for (auto d : t.shape) n *= static_cast<std::size_t>(d);
        float lo = -1.0f, hi = 1.0f;
        const std::string& name = t.name;
        if (t.role == rwkv::tensor_role::att_decay) lo = -5.0f, hi = 0.5f;
        if (name.find("ln") != std::string::npos && name.ends_with(".weight")) lo = 0.5f, hi = 1.5f;
        if (name.find("time_m") != std::string::npos && t.shape.size() == 3 && t.shape[0] == 1) lo = 0.0f, hi = 1.0f;
        if (t.matrix || t.role == rwkv::tensor_role::att_maa_w2 || t.role == rwkv::tensor_role::att_decay_w2 ||
            t.role == rwkv::tensor_role::att_maa_w1 || t.role == rwkv::tensor_role::att_decay_w1) {
            const float a = 1.5f / std::sqrt(static_cast<float>(t.shape.back()));
            lo = -a, hi = a;
        }
        std::uniform_real_distribution<float> d(lo, hi);
        std::vector<float> v(n);
        for (auto& x : v) x = d(g);
        b.add(t.name, t.shape, v);
    }
    return b.take();
}

rwkv::Config shape(rwkv::Version v, int C, int N, int A, int F, int Dm, int Dw, int V) {
    rwkv::Config c;
    c.version = v;
    c.n_layer = 2;
    c.n_embd = C;
    c.head_size = N;
    c.dim_att = A;
    c.dim_ffn = F;
    c.dim_lora_mix = Dm;
    c.dim_lora_decay = Dw;
    c.vocab_size = V;
    return c.finalize();
}

std::vector<rwkv::Config> shapes() {
    std::vector<rwkv::Config> out;
    for (auto v : {rwkv::Version::x052, rwkv::Version::x060}) {
        out.push_back(shape(v, 32, 8, 32, 112, 8, 16, 50));  // ordinary proportions
        out.push_back(shape(v, 24, 4, 16, 8, 40, 48, 10));   // Dm > A, Dw > A, F < C, V < C, A != C
        // head size 1 (x060 only: a [H, 1] x052 decay is how RWKV-5.1 files look), A < C < F < V
        out.push_back(shape(v, 20, v == rwkv::Version::x060 ? 1 : 2, 12, 36, 3, 5, 300));
        out.push_back(shape(v, 16, 24, 48, 20, 2, 64, 17));  // head size 24 > C, A > C
    }
    return out;
}

float max_rel(const float* a, const float* b, std::size_t n) {
    float m = 0.0f;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0f, std::abs(b[i])));
    return m;
}

std::string describe(const rwkv::Config& c) {
    return std::string(c.version == rwkv::Version::x052 ? "x052" : "x060") + " C" + std::to_string(c.n_embd) + " N" +
           std::to_string(c.head_size) + " A" + std::to_string(c.dim_att) + " F" + std::to_string(c.dim_ffn) + " Dm" +
           std::to_string(c.dim_lora_mix) + " Dw" + std::to_string(c.dim_lora_decay) + " V" +
           std::to_string(c.vocab_size);
}

}  // namespace

TEST_CASE("each layer matches the reference backend on random inputs and states", "[layers]") {
    std::mt19937 g(11);
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    for (const auto& c : shapes()) {
        const auto file = random_file(c, 5);
        auto fast = rwkv::Model<float, rwkv::cpu>::from_tensors(file);
        auto ref = rwkv::Model<float, rwkv::reference>::from_tensors(file);
        for (int n : {1, 3, 128}) {
            INFO(describe(c) << ", " << n << " tokens");
            const auto C = static_cast<std::size_t>(c.n_embd), nC = static_cast<std::size_t>(n) * C;
            rwkv::detail::Workspace wa, wb;
            rwkv::backend::cpu::ThreadPool pool(2);
            wa.reserve(c, n);
            wb.reserve(c, n);
            wa.pool = &pool;
            for (int l = 0; l < c.n_layer; ++l) {
                std::vector<float> z(nC), x(nC), shift(C);
                std::vector<float> S(static_cast<std::size_t>(c.n_head) * static_cast<std::size_t>(c.head_size) *
                                     static_cast<std::size_t>(c.head_size));
                for (auto* v : {&z, &x, &shift, &S})
                    for (auto& e : *v) e = d(g);
                // Time mix.
                auto xa = x, xb = x, sa = shift, sb = shift, Sa = S, Sb = S;
                const auto& ba = fast.blocks()[static_cast<std::size_t>(l)];
                const auto& bb = ref.blocks()[static_cast<std::size_t>(l)];
                std::visit([&](const auto& att) { att.forward(wa, c, z.data(), n, sa.data(), Sa.data(), xa.data()); },
                           ba.att);
                std::visit([&](const auto& att) { att.forward(wb, c, z.data(), n, sb.data(), Sb.data(), xb.data()); },
                           bb.att);
                CHECK(sa == sb);
                CHECK(sa == std::vector<float>(z.end() - static_cast<std::ptrdiff_t>(C), z.end()));
                CHECK(max_rel(xa.data(), xb.data(), nC) <= 1e-4f);
                CHECK(max_rel(Sa.data(), Sb.data(), S.size()) <= 1e-4f);
                CHECK(max_rel(xa.data(), x.data(), nC) > 1e-3f);  // the layer did something
                // Channel mix.
                xa = x, xb = x, sa = shift, sb = shift;
                ba.ffn.forward(wa, c, z.data(), n, sa.data(), xa.data());
                bb.ffn.forward(wb, c, z.data(), n, sb.data(), xb.data());
                CHECK(sa == sb);
                CHECK(max_rel(xa.data(), xb.data(), nC) <= 1e-4f);
                CHECK(max_rel(xa.data(), x.data(), nC) > 1e-3f);
            }
        }
    }
}

TEST_CASE("whole models agree with the reference backend, token by token and as spans", "[layers][model]") {
    for (const auto& c : shapes()) {
        INFO(describe(c));
        const auto file = random_file(c, 9);
        auto fast = rwkv::Model<float, rwkv::cpu>::from_tensors(file);
        auto ref = rwkv::Model<float, rwkv::reference>::from_tensors(file);
        std::vector<rwkv::token> toks(40);
        for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<rwkv::token>((i * 37 + 3) % c.vocab_size);
        auto sa = fast.new_state();
        auto sb = ref.new_state();
        const auto V = static_cast<std::size_t>(c.vocab_size);
        std::vector<float> all(toks.size() * V);
        fast.forward_all(toks, sa, all);
        for (std::size_t t = 0; t < toks.size(); ++t) {
            auto lb = ref.forward(toks[t], sb);
            CHECK(max_rel(all.data() + t * V, lb.data(), V) <= 1e-4f);
        }
        CHECK(max_rel(sa.data().data(), sb.data().data(), sa.data().size()) <= 1e-4f);
    }
}

TEST_CASE("a stored model of a mixed-format file runs each matrix in its own format", "[layers][stored]") {
    const auto c = shape(rwkv::Version::x060, 32, 8, 32, 112, 8, 16, 50);
    auto file = random_file(c, 3);
    // Re-encode some big matrices as bf16 and f16, like files that keep emb/head in another type.
    std::vector<std::shared_ptr<std::vector<std::byte>>> keep;
    for (auto& t : file.tensors) {
        const bool to_bf16 = t.name == "head.weight" || t.name.ends_with("att.key.weight");
        const bool to_f16 = t.name == "emb.weight" || t.name.ends_with("ffn.value.weight");
        if (!to_bf16 && !to_f16) continue;
        const rwkv::dtype dt = to_bf16 ? rwkv::dtype::bf16 : rwkv::dtype::f16;
        std::vector<float> v(static_cast<std::size_t>(t.numel()));
        rwkv::weights::decode_row(t.type, t.data.data(), v.data(), t.numel());
        auto buf = std::make_shared<std::vector<std::byte>>(rwkv::dtype_bytes(dt, t.numel()));
        rwkv::weights::encode_row(dt, v.data(), buf->data(), t.numel());
        t.type = dt;
        t.data = std::span<const std::byte>(*buf);
        t.owner = buf;
        keep.push_back(buf);
    }
    auto stored = rwkv::Model<rwkv::stored>::from_tensors(file);
    auto widened = rwkv::Model<float>::from_tensors(file);
    CHECK(stored.weight_type() == "stored: F32 + F16 + BF16");
    CHECK(stored.head().type == rwkv::dtype::bf16);
    CHECK(stored.emb().type == rwkv::dtype::f16);
    CHECK(widened.head().type == rwkv::dtype::f32);
    auto sa = stored.new_state();
    auto sb = widened.new_state();
    std::vector<rwkv::token> toks = {1, 7, 3, 49, 0, 22};
    auto la = stored.forward(toks, sa);
    std::vector<float> a(la.begin(), la.end());
    auto lb = widened.forward(toks, sb);
    // Widening bf16/f16 to fp32 is exact, so both run the same values.
    CHECK(max_rel(a.data(), lb.data(), a.size()) <= 1e-5f);
}
