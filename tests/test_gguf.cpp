// rwkv/io/gguf.hpp: hand-built GGUF files (metadata, tensor infos, the rwkv6 → official
// transforms: split lerp vectors, transposed LoRAs, rescaled matrices multiplied back exactly),
// every truncation and corruption refused with a message naming it, and the fixture files.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <rwkv/io/gguf.hpp>
#include <rwkv/weights/format.hpp>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using rwkv::dtype;
using test_support::error_of;
using test_support::f32_bytes;
using test_support::gguf_builder;
using test_support::temp_dir;

namespace {

std::vector<float> floats(const rwkv::io::tensor_view& t) {
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    rwkv::weights::decode_row(t.type, t.data.data(), v.data(), t.numel());
    return v;
}

std::vector<float> iota(int n, float start = 0.0f) {
    std::vector<float> v(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = start + static_cast<float>(i);
    return v;
}

// A small rwkv6-style file: C = 4 (2 heads of 2), Dm = 1, Dw = 2, 3 blocks, rescale every 1.
gguf_builder sample() {
    gguf_builder g;
    g.rwkv6().add_u32("rwkv6.block_count", 3).add_u32("rwkv6.rescale_every_n_layers", 1).add_f32("x.f", 0.5f);
    g.add_tensor("token_embd.weight", {4, 3}, 0, f32_bytes(iota(12)));
    g.add_tensor("blk.0.time_mix_lerp_fused.weight", {4, 1, 1, 5}, 0, f32_bytes(iota(20)));
    g.add_tensor("blk.0.time_mix_w1.weight", {4, 5}, 0, f32_bytes(iota(20)));       // (5Dm=5, C=4)
    g.add_tensor("blk.0.time_mix_w2.weight", {1, 4, 5}, 0, f32_bytes(iota(20)));    // (5, C, Dm)
    g.add_tensor("blk.0.time_mix_decay_w2.weight", {2, 4}, 0, f32_bytes(iota(8)));  // (A, Dw)
    g.add_tensor("blk.0.time_mix_first.weight", {2, 2}, 0, f32_bytes(iota(4)));
    g.add_tensor("blk.0.time_mix_lerp_x.weight", {4, 1, 1}, 0, f32_bytes(iota(4)));
    g.add_tensor("blk.2.time_mix_output.weight", {4, 4}, 0, f32_bytes(iota(16, -8.0f)));
    // Q8_0 [32, 1] with d = 0.5, q = 0..31: multiplied back by 4 in its fp16 scale.
    std::string q(34, '\0');
    q[0] = 0x00;
    q[1] = 0x38;
    for (int i = 0; i < 32; ++i) q[2 + static_cast<std::size_t>(i)] = static_cast<char>(i);
    g.add_tensor("blk.2.channel_mix_value.weight", {32, 1}, 8, q);
    g.add_tensor("blk.1.some_future_tensor.weight", {4}, 0, f32_bytes(iota(4)));
    return g;
}

}  // namespace

TEST_CASE("read_gguf: metadata and tensor infos of a hand-built file", "[gguf]") {
    temp_dir dir("rwkv-gguf");
    const auto p = dir.write("m.gguf", sample().build());
    const auto g = rwkv::io::read_gguf(p);
    CHECK(g.version == 3);
    CHECK(g.string_or("general.architecture", "") == "rwkv6");
    CHECK(g.integer("rwkv6.block_count") == 3);
    CHECK(g.find("x.f")->f == 0.5);
    REQUIRE(g.tensors.size() == 10);
    CHECK(g.tensors[0].shape == std::vector<std::int64_t>{3, 4});  // ne reversed
    // Zero-copy: spans point into the mapping.
    const auto all = g.file->bytes();
    CHECK(g.tensors[0].data.data() >= all.data());
    CHECK(g.tensors[0].data.data() + g.tensors[0].data.size() <= all.data() + all.size());
}

TEST_CASE("load_gguf: rwkv6 tensors in official names and layouts", "[gguf]") {
    temp_dir dir("rwkv-gguf");
    const auto f = rwkv::io::load_gguf(dir.write("m.gguf", sample().build()));
    CHECK(f.at("emb.weight").shape == std::vector<std::int64_t>{3, 4});
    // Fused lerp: slots w, k, v, r, g of C values each.
    const char* slots[5] = {"w", "k", "v", "r", "g"};
    for (int s = 0; s < 5; ++s) {
        const auto& t = f.at(std::string("blocks.0.att.time_maa_") + slots[s]);
        CHECK(t.shape == std::vector<std::int64_t>{1, 1, 4});
        CHECK(floats(t) == iota(4, static_cast<float>(4 * s)));
    }
    CHECK(f.at("blocks.0.att.time_maa_x").shape == std::vector<std::int64_t>{1, 1, 4});
    // time_maa_w1: stored (5, 4) → official (4, 5), element [c][j] = stored [j][c].
    const auto& w1 = f.at("blocks.0.att.time_maa_w1");
    REQUIRE(w1.shape == std::vector<std::int64_t>{4, 5});
    const auto w1v = floats(w1);
    CHECK(w1v[1 * 5 + 3] == 3.0f * 4 + 1);
    // time_maa_w2: stored (5, C=4, Dm=1) → official (5, 1, 4): here a pure reshape of each slot.
    const auto& w2 = f.at("blocks.0.att.time_maa_w2");
    CHECK(w2.shape == std::vector<std::int64_t>{5, 1, 4});
    CHECK(floats(w2) == iota(20));
    // time_decay_w2: stored (A=4, Dw=2) → official (2, 4).
    const auto& dw2 = f.at("blocks.0.att.time_decay_w2");
    REQUIRE(dw2.shape == std::vector<std::int64_t>{2, 4});
    CHECK(floats(dw2)[1 * 4 + 2] == 2.0f * 2 + 1);
    CHECK(f.at("blocks.0.att.time_faaaa").shape == std::vector<std::int64_t>{2, 2});
    // Block 2 with rescale_every 1: multiplied back by 2^2, exactly; Q8_0 stays Q8_0.
    auto out = floats(f.at("blocks.2.att.output.weight"));
    for (int i = 0; i < 16; ++i) CHECK(out[static_cast<std::size_t>(i)] == 4.0f * static_cast<float>(i - 8));
    const auto& v = f.at("blocks.2.ffn.value.weight");
    CHECK(v.type == dtype::q8_0);
    const auto vv = floats(v);
    for (int i = 0; i < 32; ++i) CHECK(vv[static_cast<std::size_t>(i)] == 2.0f * static_cast<float>(i));
    // Unknown per-block tensors stay under their GGUF name for the loader to report.
    CHECK(f.find("blk.1.some_future_tensor.weight") != nullptr);
}

TEST_CASE("load_gguf: a rescale that would overflow fp16 scales widens to exact f32", "[gguf]") {
    gguf_builder g;
    g.rwkv6().add_u32("rwkv6.block_count", 40).add_u32("rwkv6.rescale_every_n_layers", 1);
    std::string q(34, '\0');
    q[0] = static_cast<char>(0xff);
    q[1] = 0x7b;  // d = 65504
    q[2] = 1;
    g.add_tensor("blk.39.time_mix_output.weight", {32, 1}, 8, q);
    temp_dir dir("rwkv-gguf");
    const auto f = rwkv::io::load_gguf(dir.write("m.gguf", g.build()));
    const auto& t = f.at("blocks.39.att.output.weight");
    CHECK(t.type == dtype::f32);
    CHECK(floats(t)[0] == std::ldexp(65504.0f, 39));
}

TEST_CASE("GGUF errors name the file and what is wrong", "[gguf]") {
    temp_dir dir("rwkv-gguf");
    auto err = [&](const std::string& bytes) {
        const auto p = dir.write("bad.gguf", bytes);
        return error_of([&] { rwkv::io::load_gguf(p); });
    };
    const std::string good = sample().build();
    SECTION("every truncation") {
        test_support::every_prefix_fails(good, ".gguf", [](const auto& p) { rwkv::io::load_gguf(p); }, {},
                                         {"truncated"});
        CHECK_THAT(err(good.substr(0, good.size() - 1)), Catch::Contains("bad.gguf") && Catch::Contains("truncated"));
        CHECK_THAT(err(good.substr(0, 30)), Catch::Contains("truncated"));
    }
    SECTION("magic and version") {
        CHECK_THAT(err("GGML" + good.substr(4)), Catch::Contains("not a GGUF file"));
        std::string v1 = good;
        v1[4] = 1;
        CHECK_THAT(err(v1), Catch::Contains("version 1"));
        std::string v9 = good;
        v9[4] = 9;
        CHECK_THAT(err(v9), Catch::Contains("unsupported GGUF version 9"));
    }
    SECTION("another architecture, named") {
        gguf_builder g;
        g.add_string("general.architecture", "llama").add_tensor("x", {4}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(g.build()),
                   Catch::Contains("architecture 'llama' is not supported") && Catch::Contains("rwkv6"));
        gguf_builder none;
        none.add_tensor("x", {4}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(none.build()), Catch::Contains("general.architecture"));
    }
    SECTION("unsupported tensor types are named with the supported list") {
        gguf_builder g;
        g.rwkv6().add_tensor("blk.0.time_mix_key.weight", {256, 1}, 16, std::string(66, '\0'));
        const std::string m = err(g.build());
        CHECK_THAT(m, Catch::Contains("tensor 'blk.0.time_mix_key.weight' is IQ2_XXS; supported: ") &&
                          Catch::Contains(rwkv::weight_format_names()));
        gguf_builder h;
        h.rwkv6().add_tensor("t", {4}, 99, std::string(16, '\0'));
        CHECK_THAT(err(h.build()), Catch::Contains("is ggml type 99"));
    }
    SECTION("byte sizes that disagree with type and shape") {
        gguf_builder g;  // 33 values are not whole Q8_0 blocks
        g.rwkv6().add_tensor("t", {33, 1}, 8, std::string(68, '\0'));
        CHECK_THAT(err(g.build()), Catch::Contains("tensor 't'") && Catch::Contains("blocks of 32"));
        gguf_builder h;  // the declared F32 [100] runs past the end of the data
        h.rwkv6().add_tensor("t", {100}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(h.build()), Catch::Contains("tensor 't'") && Catch::Contains("past the end"));
    }
    SECTION("corrupt header fields") {
        gguf_builder g;
        g.rwkv6().add_u32("general.alignment", 24);
        CHECK_THAT(err(g.build()), Catch::Contains("power of two"));
        gguf_builder d;
        d.rwkv6().rwkv6();
        CHECK_THAT(err(d.build()), Catch::Contains("duplicate metadata key 'general.architecture'"));
        gguf_builder t;
        t.rwkv6().add_tensor("a", {4}, 0, f32_bytes(iota(4))).add_tensor("a", {4}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(t.build()), Catch::Contains("duplicate tensor 'a'"));
        std::string huge = good;  // tensor count 2^40
        test_support::set_le(huge, 8, std::uint64_t{1} << 40, 8);
        CHECK_THAT(err(huge), Catch::Contains("cannot fit"));
        gguf_builder arr;  // an array claiming 2^50 strings
        std::string e;
        gguf_builder::str(e, "tokenizer.ggml.tokens");
        test_support::put_le(e, 9, 4);
        test_support::put_le(e, 8, 4);
        test_support::put_le(e, std::uint64_t{1} << 50, 8);
        arr.rwkv6().add_raw(e);
        CHECK_THAT(err(arr.build()),
                   Catch::Contains("tokenizer.ggml.tokens") && Catch::Contains("more than the file holds"));
        gguf_builder bad_type;
        std::string k;
        gguf_builder::str(k, "k");
        test_support::put_le(k, 77, 4);
        bad_type.rwkv6().add_raw(k);
        CHECK_THAT(err(bad_type.build()), Catch::Contains("metadata 'k' has unknown value type 77"));
        gguf_builder dims;
        dims.rwkv6().add_tensor("t", {1, 1, 1, 1, 4}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(dims.build()), Catch::Contains("tensor 't' has 5 dimensions"));
    }
    SECTION("overlapping and misaligned tensors") {
        std::string s = sample().build();
        // Second tensor info's offset (after the first) set to 0: overlaps token_embd.
        gguf_builder g;
        g.rwkv6().add_tensor("a", {8}, 0, f32_bytes(iota(8))).add_tensor("b", {8}, 0, f32_bytes(iota(8)));
        std::string b = g.build();
        const std::size_t at = b.find("b", b.find("\x01\x00\x00\x00\x00\x00\x00\x00"
                                                  "b")) +
                               1 + 4 + 8 + 4;
        test_support::set_le(b, at, 0, 8);
        CHECK_THAT(err(b), Catch::Contains("'a' and 'b' overlap"));
        test_support::set_le(b, at, 4, 8);
        CHECK_THAT(err(b), Catch::Contains("not a multiple of the alignment"));
    }
}

namespace {

// A small rwkv5 (x052) file as rwkv-quantize writes them (docs/gguf-rwkv5.md): C = A = 4, 2 heads
// of 2, 2 blocks, rescale every 1. `skip_key` / `skip_tensor` leave one out.
gguf_builder sample5(const std::string& skip_key = "", const std::string& skip_tensor = "") {
    gguf_builder g;
    g.add_string("general.architecture", "rwkv5");
    const std::pair<const char*, std::uint32_t> keys[] = {{"rwkv5.block_count", 2},
                                                          {"rwkv5.embedding_length", 4},
                                                          {"rwkv5.wkv.head_size", 2},
                                                          {"rwkv5.feed_forward_length", 8},
                                                          {"rwkv5.rescale_every_n_layers", 1}};
    for (const auto& [k, v] : keys)
        if (k != skip_key) g.add_u32(k, v);
    auto tensor = [&](const std::string& name, std::vector<std::uint64_t> ne, std::vector<float> v) {
        if (name != skip_tensor) g.add_tensor(name, std::move(ne), 0, f32_bytes(v));
    };
    tensor("token_embd.weight", {4, 3}, iota(12));
    for (int l = 0; l < 2; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        tensor(p + "attn_norm.weight", {4}, iota(4));
        for (const char* x : {"k", "v", "r", "g"}) tensor(p + "time_mix_lerp_" + x + ".weight", {4}, iota(4, 10.0f));
        tensor(p + "channel_mix_lerp_k.weight", {4}, iota(4, 20.0f));
        tensor(p + "channel_mix_lerp_r.weight", {4}, iota(4, 30.0f));
        tensor(p + "time_mix_decay.weight", {4}, iota(4, -6.0f));
        tensor(p + "time_mix_first.weight", {2, 2}, iota(4, 0.5f));
        tensor(p + "time_mix_output.weight", {4, 4}, iota(16, -8.0f));
        tensor(p + "channel_mix_key.weight", {4, 8}, iota(32));
    }
    return g;
}

}  // namespace

TEST_CASE("load_gguf: rwkv5 (x052) tensors in official names and layouts", "[gguf][rwkv5]") {
    temp_dir dir("rwkv-gguf");
    const auto f = rwkv::io::load_gguf(dir.write("m5.gguf", sample5().build()));
    for (const char* x : {"k", "v", "r", "g"}) {
        const auto& t = f.at(std::string("blocks.1.att.time_mix_") + x);
        CHECK(t.shape == std::vector<std::int64_t>{1, 1, 4});
        CHECK(floats(t) == iota(4, 10.0f));
    }
    CHECK(floats(f.at("blocks.0.ffn.time_mix_k")) == iota(4, 20.0f));
    CHECK(floats(f.at("blocks.0.ffn.time_mix_r")) == iota(4, 30.0f));
    // The decay comes back as [H, N] raw d, as stored; the bonus as [H, N].
    const auto& d = f.at("blocks.0.att.time_decay");
    CHECK(d.shape == std::vector<std::int64_t>{2, 2});
    CHECK(floats(d) == iota(4, -6.0f));
    CHECK(d.owner == nullptr);  // zero copy
    CHECK(f.at("blocks.1.att.time_faaaa").shape == std::vector<std::int64_t>{2, 2});
    // Rescale every 1: block 1 multiplied back by 2, block 0 as stored.
    CHECK(floats(f.at("blocks.0.att.output.weight")) == iota(16, -8.0f));
    const auto out1 = floats(f.at("blocks.1.att.output.weight"));
    for (int i = 0; i < 16; ++i) CHECK(out1[static_cast<std::size_t>(i)] == 2.0f * static_cast<float>(i - 8));
    bool noted = false;
    for (const auto& [k, v] : f.metadata) noted = noted || (k == "architecture" && v == "rwkv5");
    CHECK(noted);
}

TEST_CASE("rwkv5 GGUF errors name the key or tensor", "[gguf][rwkv5]") {
    temp_dir dir("rwkv-gguf");
    auto err = [&](const gguf_builder& g) {
        const auto p = dir.write("bad5.gguf", g.build());
        return error_of([&] { rwkv::io::load_gguf(p); });
    };
    for (const char* k :
         {"rwkv5.block_count", "rwkv5.embedding_length", "rwkv5.wkv.head_size", "rwkv5.rescale_every_n_layers"}) {
        INFO(k);
        CHECK_THAT(err(sample5(k)),
                   Catch::Contains("bad5.gguf") && Catch::Contains(std::string("missing metadata '") + k + "'"));
    }
    SECTION("a decay that is not A = H x head_size values") {
        gguf_builder g = sample5("", "blk.1.time_mix_decay.weight");
        g.add_tensor("blk.1.time_mix_decay.weight", {3}, 0, f32_bytes(iota(3)));
        CHECK_THAT(err(g), Catch::Contains("tensor 'blk.1.time_mix_decay.weight' has shape [3]") &&
                               Catch::Contains("rwkv5.wkv.head_size"));
        gguf_builder h = sample5("", "blk.1.time_mix_decay.weight");
        h.add_tensor("blk.1.time_mix_decay.weight", {2, 2}, 0, f32_bytes(iota(4)));
        CHECK_THAT(err(h), Catch::Contains("tensor 'blk.1.time_mix_decay.weight' has shape [2, 2]"));
    }
    SECTION("an RWKV-6 tensor in an rwkv5 file") {
        gguf_builder g = sample5();
        g.add_tensor("blk.0.time_mix_lerp_fused.weight", {4, 1, 1, 5}, 0, f32_bytes(iota(20)));
        CHECK_THAT(err(g), Catch::Contains("tensor 'blk.0.time_mix_lerp_fused.weight' is an RWKV-6 tensor") &&
                               Catch::Contains("'rwkv5'"));
    }
    SECTION("metadata that disagrees with the tensors") {
        gguf_builder g = sample5("rwkv5.wkv.head_size");
        g.add_u32("rwkv5.wkv.head_size", 4);  // time_mix_first is {N = 2, H = 2}
        CHECK_THAT(err(g), Catch::Contains("metadata 'rwkv5.wkv.head_size' = 4 disagrees with tensor "
                                           "'blocks.0.att.time_faaaa' of shape [2, 2]"));
        gguf_builder e = sample5("rwkv5.embedding_length");
        e.add_u32("rwkv5.embedding_length", 8);
        CHECK_THAT(err(e), Catch::Contains("metadata 'rwkv5.embedding_length' = 8 disagrees with tensor 'emb.weight'"));
        gguf_builder f = sample5("rwkv5.feed_forward_length");
        f.add_u32("rwkv5.feed_forward_length", 7);
        CHECK_THAT(err(f), Catch::Contains("metadata 'rwkv5.feed_forward_length' = 7 disagrees"));
        gguf_builder b = sample5("rwkv5.block_count");
        b.add_u32("rwkv5.block_count", 3);
        CHECK_THAT(err(b), Catch::Contains("rwkv5.block_count = 3 but block 2 has no tensors"));
        gguf_builder z = sample5("rwkv5.wkv.head_size");
        z.add_u32("rwkv5.wkv.head_size", 0);
        CHECK_THAT(err(z), Catch::Contains("metadata 'rwkv5.wkv.head_size' is 0"));
        gguf_builder s = sample5("rwkv5.rescale_every_n_layers");
        s.add_string("rwkv5.rescale_every_n_layers", "six");
        CHECK_THAT(err(s), Catch::Contains("metadata 'rwkv5.rescale_every_n_layers' should be an integer"));
    }
    SECTION("every truncation of an rwkv5 file") {
        test_support::every_prefix_fails(sample5().build(), ".gguf", [](const auto& p) { rwkv::io::load_gguf(p); }, {},
                                         {"truncated"});
    }
}

TEST_CASE("GGUF fixtures: every file parses, quantized tensors stay quantized and in place", "[gguf]") {
    RWKV_REQUIRE_FIXTURES();
    const auto f = rwkv::io::load_gguf(fixtures::dir() / "formats/gguf/tiny-rwkv-6v0-1m-Q4_0.gguf");
    const auto& k = f.at("blocks.0.att.key.weight");
    CHECK(k.type == dtype::q4_0);
    CHECK(k.owner == nullptr);  // a span into the mapping
    // Blocks 6..11 were divided by 2 in the file and come back as Q4_0 with doubled scales.
    CHECK(f.at("blocks.7.att.output.weight").type == dtype::q4_0);
    CHECK(f.at("blocks.7.att.output.weight").owner != nullptr);
    const auto k2 =
        rwkv::io::load_gguf(fixtures::dir() / "formats/gguf-kquant/rand-x060-L2-D256-H64-V1000-Q3_K_M.gguf");
    CHECK(k2.at("blocks.0.att.key.weight").type == dtype::q3_k);
    CHECK(k2.at("blocks.0.ffn.value.weight").type == dtype::iq4_nl);
    CHECK(k2.at("head.weight").type == dtype::q6_k);
}
