// Model<T>::random: the official initialisation (spec appendix B), determinism, and shapes that
// no fixture has.

#include <rwkv/model.hpp>

#include <catch2/catch.hpp>

#include <cmath>

namespace {

rwkv::Config small(rwkv::Version v) {
    rwkv::Config c;
    c.version = v;
    c.n_layer = 3;
    c.n_embd = 48;
    c.head_size = 16;
    c.vocab_size = 300;
    c.dim_lora_mix = 8;
    c.dim_lora_decay = 12;
    return c;
}

const rwkv::io::tensor_view& find(const rwkv::io::tensor_file& f, const std::string& n) { return f.at(n); }

std::vector<float> floats(const rwkv::io::tensor_view& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
    return v;
}

}  // namespace

TEST_CASE("random models have the requested shape and official defaults", "[init]") {
    for (auto v : {rwkv::Version::x052, rwkv::Version::x060}) {
        auto m = rwkv::Model<float>::random(small(v), 7);
        const auto& c = m.config();
        CHECK(c.version == v);
        CHECK(c.n_layer == 3);
        CHECK(c.n_embd == 48);
        CHECK(c.n_head == 3);
        CHECK(c.dim_ffn == 160);  // int(3.5 * 48) / 32 * 32
        CHECK(c.vocab_size == 300);
        if (v == rwkv::Version::x060) {
            CHECK(c.dim_lora_mix == 8);
            CHECK(c.dim_lora_decay == 12);
        }
        auto s = m.new_state();
        auto logits = m.forward(rwkv::token{299}, s);
        CHECK(std::all_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); }));
    }
}

TEST_CASE("the initial values follow RWKV-LM's formulas", "[init]") {
    const auto c = small(rwkv::Version::x060);
    const auto f = rwkv::detail::random_tensors<float>(c, 1, rwkv::Init::official);
    // layer 2 of 3: r0 = 1, r1 = 1/3
    const auto decay = floats(find(f, "blocks.2.att.time_decay"));
    CHECK(decay.front() == Approx(-6.0));
    CHECK(decay.back() == Approx(-1.0));
    CHECK(decay[24] == Approx(-6.0 + 5.0 * std::pow(24.0 / 47.0, 2.0)));
    const auto u = floats(find(f, "blocks.2.att.time_faaaa"));
    CHECK(u[0] == Approx(1.0 + 0.0).margin(1e-6));  // r0*(1-0) + 0.1*((1 % 3) - 1)
    CHECK(u[1] == Approx(1.0 - 1.0 / 47.0 + 0.1));
    const auto maa_k = floats(find(f, "blocks.2.att.time_maa_k"));
    CHECK(maa_k[12] == Approx(1.0 - std::pow(12.0 / 48.0, 1.0 / 3.0)));
    const auto lnx = floats(find(f, "blocks.0.att.ln_x.weight"));
    CHECK(lnx[5] == Approx(std::pow(1.0 / 3.0, 0.7)));
    const auto out = floats(find(f, "blocks.1.att.output.weight"));
    CHECK(std::all_of(out.begin(), out.end(), [](float x) { return x == 0.0f; }));
    const auto w1 = floats(find(f, "blocks.1.att.time_maa_w1"));
    CHECK(std::all_of(w1.begin(), w1.end(), [](float x) { return x == 0.0f; }));
    const auto w2 = floats(find(f, "blocks.1.att.time_maa_w2"));
    CHECK(std::all_of(w2.begin(), w2.end(), [](float x) { return std::abs(x) <= 0.01f; }));
    CHECK(std::any_of(w2.begin(), w2.end(), [](float x) { return x != 0.0f; }));

    // Orthogonal: the key weight [A][C] (square here) times its transpose is gain² I.
    const auto k = floats(find(f, "blocks.0.att.key.weight"));
    double worst = 0.0;
    for (int a = 0; a < 48; ++a)
        for (int b = 0; b < 48; ++b) {
            double d = 0.0;
            for (int i = 0; i < 48; ++i) d += double(k[a * 48 + i]) * k[b * 48 + i];
            worst = std::max(worst, std::abs(d - (a == b ? 0.01 : 0.0)));
        }
    CHECK(worst < 1e-5);
    // head [V][C] with V > C: orthonormal columns, gain 0.5 sqrt(V/C).
    const auto head = floats(find(f, "head.weight"));
    const double g2 = 0.25 * 300.0 / 48.0;
    double col = 0.0;
    for (int v = 0; v < 300; ++v) col += double(head[v * 48 + 3]) * head[v * 48 + 3];
    CHECK(col == Approx(g2).epsilon(1e-5));
}

TEST_CASE("random models are deterministic for a seed", "[init]") {
    const auto c = small(rwkv::Version::x052);
    auto a = rwkv::Model<rwkv::bfloat16>::random(c, 42);
    auto b = rwkv::Model<rwkv::bfloat16>::random(c, 42);
    auto d = rwkv::Model<rwkv::bfloat16>::random(c, 43);
    const auto* ka = a.blocks()[1].ffn.key.data;
    const auto* kb = b.blocks()[1].ffn.key.data;
    const auto* kd = d.blocks()[1].ffn.key.data;
    const auto n = a.blocks()[1].ffn.key.size();
    CHECK(std::memcmp(ka, kb, n * 2) == 0);
    CHECK(std::memcmp(ka, kd, n * 2) != 0);
}

TEST_CASE("invalid configs are refused", "[init][errors]") {
    auto c = small(rwkv::Version::x060);
    c.head_size = 7;  // 48 is not a multiple of 7
    CHECK_THROWS_WITH(rwkv::Model<float>::random(c, 1), Catch::Contains("head_size"));
    auto d = small(rwkv::Version::x060);
    d.n_layer = 0;
    CHECK_THROWS_WITH(rwkv::Model<float>::random(d, 1), Catch::Contains("n_layer"));
}
