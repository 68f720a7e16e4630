// rwkv/io/hf.hpp: Hugging Face RWKV-5/6 names mapped back to official ones, folder layouts
// (safetensors, sharded, pytorch_model.bin), and the folder errors.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <rwkv/io/hf.hpp>
#include <rwkv/io/open.hpp>
#include <rwkv/model.hpp>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using test_support::error_of;
using test_support::f32_bytes;
using test_support::temp_dir;

TEST_CASE("hf_to_official_name undoes the HF conversion scripts' renaming", "[hf]") {
    using rwkv::io::hf_to_official_name;
    CHECK(hf_to_official_name("rwkv.embeddings.weight") == "emb.weight");
    CHECK(hf_to_official_name("rwkv.blocks.0.pre_ln.bias") == "blocks.0.ln0.bias");
    CHECK(hf_to_official_name("rwkv.blocks.3.attention.time_maa_w1") == "blocks.3.att.time_maa_w1");
    CHECK(hf_to_official_name("rwkv.blocks.3.feed_forward.time_mix_receptance") == "blocks.3.ffn.time_mix_r");
    CHECK(hf_to_official_name("rwkv.blocks.11.attention.time_mix_gate") == "blocks.11.att.time_mix_g");
    CHECK(hf_to_official_name("rwkv.blocks.1.attention.key.weight") == "blocks.1.att.key.weight");
    CHECK(hf_to_official_name("rwkv.blocks.1.ln1.weight") == "blocks.1.ln1.weight");
    CHECK(hf_to_official_name("rwkv.ln_out.weight") == "ln_out.weight");
    CHECK(hf_to_official_name("head.weight") == "head.weight");
    CHECK(hf_to_official_name("blocks.0.att.time_mix_k") == "blocks.0.att.time_mix_k");  // already official
}

TEST_CASE("load_hf: folder errors", "[hf]") {
    temp_dir dir("rwkv-hf");
    CHECK_THAT(error_of([&] { rwkv::io::load_hf(dir.path); }),
               Catch::Contains("no weights found") && Catch::Contains("model.safetensors"));
    dir.write("config.json", R"({"model_type":"llama"})");
    dir.write("model.safetensors", test_support::safetensors_bytes({{"rwkv.x", "F32", {1}, f32_bytes({1})}}));
    CHECK_THAT(error_of([&] { rwkv::io::load_hf(dir.path); }),
               Catch::Contains("config.json") && Catch::Contains("model_type 'llama' is not supported"));
    dir.write("config.json", R"({"model_type":)");
    CHECK_THAT(error_of([&] { rwkv::io::load_hf(dir.path); }), Catch::Contains("config.json: invalid JSON"));
    dir.write("config.json", R"({"model_type":"rwkv6"})");
    const auto f = rwkv::io::load_hf(dir.path);
    CHECK(f.find("x") != nullptr);
    CHECK(f.format == "Hugging Face folder (safetensors)");
    dir.write("model.safetensors",
              test_support::safetensors_bytes({{"rwkv.emb.weight", "F32", {1}, f32_bytes({1})},
                                               {"rwkv.embeddings.weight", "F32", {1}, f32_bytes({1})}}));
    CHECK_THAT(error_of([&] { rwkv::io::load_hf(dir.path); }), Catch::Contains("same official name 'emb.weight'"));
}

TEST_CASE("load_hf: a pytorch_model.bin folder runs like its .pth", "[hf]") {
    RWKV_REQUIRE_FIXTURES();
    temp_dir dir("rwkv-hf");
    std::filesystem::create_symlink(fixtures::dir() / "tiny/tiny-rwkv-6v0-1m.pth", dir.path / "pytorch_model.bin");
    auto model = rwkv::Model<float>::from_tensors(rwkv::io::load_hf(dir.path));
    auto ref = rwkv::Model<float>::load(fixtures::dir() / "tiny/tiny-rwkv-6v0-1m.pth");
    auto s1 = model.new_state();
    auto s2 = ref.new_state();
    const rwkv::token ids[] = {72, 105, 33};
    const auto a = model.forward(std::span<const rwkv::token>(ids), s1);
    const auto b = ref.forward(std::span<const rwkv::token>(ids), s2);
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
}

TEST_CASE("a sharded HF folder with a missing or truncated shard: the shard is named", "[hf][errors]") {
    RWKV_REQUIRE_FIXTURES();
    temp_dir dir("rwkv-hf");
    const auto src = fixtures::dir() / "formats/hf/rand-x060-L2-D128-H64-V1000-HF";
    const auto folder = dir.path / "sharded";
    std::filesystem::copy(src, folder);
    CHECK(rwkv::Model<float>::load(folder).config().n_layer == 2);  // the copy is whole
    const auto shard = folder / "model-00002-of-00002.safetensors";
    const std::string bytes = fixtures::read_text(shard);
    std::filesystem::remove(shard);
    for (const std::string& m :
         {error_of([&] { rwkv::io::open(folder); }), error_of([&] { rwkv::Model<float>::load(folder); })})
        CHECK_THAT(m, Catch::Contains("model.safetensors.index.json") &&
                          Catch::Contains("missing shard 'model-00002-of-00002.safetensors'"));
    dir.write("sharded/model-00002-of-00002.safetensors", bytes.substr(0, bytes.size() / 2));
    CHECK_THAT(error_of([&] { rwkv::Model<float>::load(folder); }),
               Catch::Contains("model-00002-of-00002.safetensors") && Catch::Contains("truncated"));
}
