// rwkv/io/open.hpp: the reader is picked by content, never by extension; a folder is a HF
// folder; unknown content gets a message listing what is supported.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <rwkv/io/open.hpp>
#include <rwkv/model.hpp>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using rwkv::io::file_kind;
using test_support::error_of;
using test_support::f32_bytes;
using test_support::temp_dir;

TEST_CASE("detect_kind reads magic bytes", "[open]") {
    temp_dir dir("rwkv-open");
    CHECK(rwkv::io::detect_kind(dir.write("a.bin", std::string("PK\x03\x04", 4) + "rest")) == file_kind::pth);
    CHECK(rwkv::io::detect_kind(dir.write("a.pth", test_support::gguf_builder().rwkv6().build())) == file_kind::gguf);
    CHECK(rwkv::io::detect_kind(dir.write("a.gguf", test_support::rwkvcpp_builder(1, 1, 1).s)) == file_kind::rwkvcpp);
    CHECK(rwkv::io::detect_kind(
              dir.write("a.txt", test_support::safetensors_bytes({{"x", "F32", {1}, f32_bytes({1})}}))) ==
          file_kind::safetensors);
    CHECK(rwkv::io::detect_kind(dir.write("a.json", "  {\"weight_map\":{}}")) == file_kind::safetensors_index);
    CHECK(rwkv::io::detect_kind(dir.path) == file_kind::hf_folder);
    CHECK(rwkv::io::detect_kind(dir.write("e", "")) == file_kind::unknown);
    CHECK(rwkv::io::detect_kind(dir.write("t", "hello world, not a model")) == file_kind::unknown);
}

TEST_CASE("open: errors", "[open]") {
    temp_dir dir("rwkv-open");
    CHECK_THAT(error_of([&] { rwkv::io::open(dir.path / "nope.gguf"); }), Catch::Contains("nope.gguf: no such file"));
    const auto p = dir.write("model.gguf", "hello world, not a model");
    const std::string m = error_of([&] { rwkv::io::open(p); });
    CHECK_THAT(m, Catch::Contains("model.gguf: unrecognised file content; supported: ") && Catch::Contains("GGUF") &&
                      Catch::Contains("safetensors") && Catch::Contains("rwkv.cpp") && Catch::Contains("Hugging Face"));
    CHECK_THAT(error_of([&] { rwkv::io::open(dir.write("empty", "")); }), Catch::Contains("unrecognised"));
}

TEST_CASE("open: fixtures under misleading names load by content", "[open]") {
    RWKV_REQUIRE_FIXTURES();
    temp_dir dir("rwkv-open");
    const auto root = fixtures::dir();
    struct item {
        std::filesystem::path src;
        const char* alias;
        const char* format;
    };
    const item items[] = {{root / "formats/gguf/rand-x060-L2-D128-H64-V1000-Q8_0.gguf", "model.pth", "GGUF v3"},
                          {root / "formats/rwkvcpp/tiny-rwkv-5v2-730K-Q8_0.bin", "model.gguf", "rwkv.cpp .bin v101"},
                          {root / "formats/hf/tiny-rwkv-6v0-1m-HF/model.safetensors", "weights.bin", "safetensors"},
                          {root / "tiny/tiny-rwkv-6v0-1m.pth", "model.safetensors", "PyTorch .pth"},
                          {root / "formats/hf/rand-x060-L2-D128-H64-V1000-HF/model.safetensors.index.json", nullptr,
                           "safetensors (sharded)"}};
    for (const item& it : items) {
        INFO(it.src.string());
        std::filesystem::path p = it.src;
        if (it.alias) {
            p = dir.path / it.alias;
            std::filesystem::remove(p);
            std::filesystem::create_symlink(it.src, p);
        }
        const auto f = rwkv::io::open(p);
        CHECK(f.format == it.format);
        CHECK(f.find("emb.weight") != nullptr);  // official names whatever the file used
        CHECK_NOTHROW(rwkv::Model<float>::from_tensors(f));
    }
    CHECK(rwkv::io::open(root / "formats/hf/tiny-rwkv-5v2-730K-HF").find("blocks.0.att.time_mix_k") != nullptr);
}
