// rwkv/io/rwkvcpp.hpp: hand-built rwkv.cpp `.bin` files (official shapes restored, x060 LoRAs
// transposed back, x052 decay turned back into d), every truncation and corruption refused
// with a clear message, and the fixture files kept quantized and in place.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <rwkv/io/rwkvcpp.hpp>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using rwkv::io::dtype;
using test_support::error_of;
using test_support::f32_bytes;
using test_support::rwkvcpp_builder;
using test_support::temp_dir;

namespace {

std::vector<float> floats(const rwkv::io::tensor_view& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    rwkv::weights::decode_row(t.type, t.data.data(), v.data(), t.numel());
    return v;
}

rwkvcpp_builder x052() {
    rwkvcpp_builder b(4, 4, 1);
    const std::vector<float> w = {0.5f, 0.999f, 1e-6f, 1.0f};
    b.add("emb.weight", {4, 4}, 0, f32_bytes(std::vector<float>(16, 0.25f)));
    b.add("blocks.0.att.time_mix_k", {4}, 0, f32_bytes({1, 2, 3, 4}));
    b.add("blocks.0.att.time_decay", {1, 2, 2}, 0, f32_bytes(w));
    b.add("blocks.0.att.time_faaaa", {1, 2, 2}, 0, f32_bytes({1, 2, 3, 4}));
    b.add("blocks.0.att.ln_x.weight", {4}, 0, f32_bytes({1, 1, 1, 1}));
    b.add("blocks.0.att.gate.weight", {4, 4}, 1, std::string(32, '\0'));
    return b;
}

}  // namespace

TEST_CASE("rwkv.cpp x052: official shapes and the decay turned back into d", "[rwkvcpp]") {
    temp_dir dir("rwkv-bin");
    const auto f = rwkv::io::load_rwkvcpp(dir.write("m.bin", x052().s));
    CHECK(f.format == "rwkv.cpp .bin v101");
    CHECK(f.at("blocks.0.att.time_mix_k").shape == std::vector<std::int64_t>{1, 1, 4});
    CHECK(f.at("blocks.0.att.time_faaaa").shape == std::vector<std::int64_t>{2, 2});
    CHECK(f.at("blocks.0.att.gate.weight").type == dtype::f16);
    const auto& d = f.at("blocks.0.att.time_decay");
    REQUIRE(d.shape == std::vector<std::int64_t>{2, 2});
    const auto dv = floats(d);
    const float w[4] = {0.5f, 0.999f, 1e-6f, 1.0f};
    for (int i = 0; i < 3; ++i) {
        const float back = std::exp(-std::exp(dv[static_cast<std::size_t>(i)]));
        // fp32 d carries 2^-24 relative error, which exp(-exp(d)) scales by |ln w|·|d| (see the reader).
        const double bound = std::fabs(std::log(w[i])) *
                                 std::max(1.0, std::fabs(static_cast<double>(dv[static_cast<std::size_t>(i)]))) *
                                 std::ldexp(1.0, -23) +
                             std::ldexp(1.0, -23);
        CHECK(std::fabs(back - w[i]) / w[i] <= bound);
    }
    CHECK(std::exp(-std::exp(dv[3])) == 1.0f);  // w = 1 stays 1
}

TEST_CASE("rwkv.cpp x060: LoRA matrices transposed back (quantized ones decoded)", "[rwkvcpp]") {
    rwkvcpp_builder b(4, 32, 1, 9);
    // time_maa_w1 stored (5·Dm = 5, C = 32) as Q8_0: five rows of one block each, d = 1, q = row.
    std::string q;
    for (int r = 0; r < 5; ++r) {
        q += std::string("\x00\x3c", 2);
        for (int i = 0; i < 32; ++i) q.push_back(static_cast<char>(r * 10 + (i % 3)));
    }
    b.add("blocks.0.att.time_maa_w1", {32, 5}, 9, q);
    b.add("blocks.0.att.time_maa_x", {32}, 0, f32_bytes(std::vector<float>(32, 0.5f)));
    b.add("blocks.0.att.time_decay", {1, 16, 2}, 0, f32_bytes(std::vector<float>(32, -1.0f)));
    temp_dir dir("rwkv-bin");
    const auto f = rwkv::io::load_rwkvcpp(dir.write("m.bin", b.s));
    const auto& w1 = f.at("blocks.0.att.time_maa_w1");
    REQUIRE(w1.shape == std::vector<std::int64_t>{32, 5});
    const auto v = floats(w1);
    CHECK(v[7 * 5 + 3] == 30.0f + 7 % 3);
    CHECK(f.at("blocks.0.att.time_decay").shape == std::vector<std::int64_t>{1, 1, 32});
    CHECK(floats(f.at("blocks.0.att.time_decay"))[0] == -1.0f);  // x060 decay stays raw
}

TEST_CASE("rwkv.cpp errors name the file and what is wrong", "[rwkvcpp]") {
    temp_dir dir("rwkv-bin");
    auto err = [&](const std::string& bytes) {
        const auto p = dir.write("bad.bin", bytes);
        return error_of([&] { rwkv::io::load_rwkvcpp(p); });
    };
    const auto good = x052();
    test_support::every_prefix_fails(good.s, ".bin", [](const auto& p) { rwkv::io::load_rwkvcpp(p); }, good.ends,
                                     {"truncated"});
    CHECK_THAT(err(good.s.substr(0, good.s.size() - 3)), Catch::Contains("bad.bin") && Catch::Contains("truncated"));
    CHECK_THAT(err("ggml" + good.s.substr(4)), Catch::Contains("not an rwkv.cpp model file"));
    CHECK_THAT(err(rwkvcpp_builder(4, 4, 1, 0, 99).s), Catch::Contains("unsupported rwkv.cpp file version 99"));
    CHECK_THAT(err(rwkvcpp_builder(0, 4, 1).s), Catch::Contains("implausible header"));
    auto one = [](int type, std::vector<std::int32_t> ne, std::size_t bytes, int version = 101) {
        rwkvcpp_builder b(4, 4, 1, 0, version);
        b.add("blocks.0.att.key.weight", std::move(ne), type, std::string(bytes, '\0'));
        return b.s;
    };
    CHECK_THAT(err(one(4, {32, 1}, 20)),
               Catch::Contains("tensor 'blocks.0.att.key.weight' is Q4_1_O (retired by rwkv.cpp); supported: ") &&
                   Catch::Contains(rwkv::weight_format_names()));
    CHECK_THAT(err(one(16, {256, 1}, 292)), Catch::Contains("is Q8_K; supported"));
    CHECK_THAT(err(one(2, {32, 1}, 18, 100)), Catch::Contains("version-100") && Catch::Contains("Q4_0"));
    CHECK_NOTHROW(rwkv::io::load_rwkvcpp(dir.write("v100.bin", one(1, {4, 4}, 32, 100))));
    CHECK_THAT(err(one(2, {33, 1}, 36)), Catch::Contains("blocks of 32"));
    CHECK_THAT(err(one(0, {4, 4}, 60)), Catch::Contains("truncated") && Catch::Contains("blocks.0.att.key.weight"));
    CHECK_THAT(err(one(0, {0, 4}, 0)), Catch::Contains("dimension 0"));
    CHECK_THAT(err(one(0, {1, 1, 1, 4}, 16)), Catch::Contains("4 dimensions"));
    rwkvcpp_builder dup(4, 4, 1);
    dup.add("a", {4}, 0, f32_bytes({1, 2, 3, 4})).add("a", {4}, 0, f32_bytes({1, 2, 3, 4}));
    CHECK_THAT(err(dup.s), Catch::Contains("duplicate tensor 'a'"));
    rwkvcpp_builder decay(4, 4, 1);
    decay.add("blocks.0.att.ln_x.weight", {4}, 0, f32_bytes({1, 1, 1, 1}));
    decay.add("blocks.0.att.time_decay", {1, 2, 2}, 0, f32_bytes({0.5f, 1.5f, 0.5f, 0.5f}));
    CHECK_THAT(err(decay.s), Catch::Contains("time_decay") && Catch::Contains("outside (0, 1]"));
    std::string long_name = rwkvcpp_builder(4, 4, 1).s;
    test_support::put_le(long_name, 1, 4);
    test_support::put_le(long_name, 0x7fffffff, 4);
    test_support::put_le(long_name, 0, 4);
    test_support::put_le(long_name, 4, 4);
    CHECK_THAT(err(long_name), Catch::Contains("name length"));
}

TEST_CASE("rwkv.cpp fixtures: quantized tensors stay quantized and in place", "[rwkvcpp]") {
    RWKV_REQUIRE_FIXTURES();
    const auto f = rwkv::io::load_rwkvcpp(fixtures::dir() / "formats/rwkvcpp/tiny-rwkv-6v0-1m-Q5_1.bin");
    const auto& k = f.at("blocks.0.att.key.weight");
    CHECK(k.type == dtype::q5_1);
    CHECK(k.owner == nullptr);
    CHECK(k.shape == std::vector<std::int64_t>{64, 64});
    CHECK(f.at("blocks.0.att.time_maa_w1").shape == std::vector<std::int64_t>{64, 160});
    CHECK(f.at("blocks.0.att.time_maa_w2").shape == std::vector<std::int64_t>{5, 32, 64});
}
