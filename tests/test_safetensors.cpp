// rwkv/io/safetensors.hpp: single files and sharded indexes, zero-copy spans, and every
// truncation / inconsistency refused with a message naming the file and the tensor.

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <rwkv/io/safetensors.hpp>

#include "errors.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

using rwkv::io::dtype;
using test_support::error_of;
using test_support::f32_bytes;
using test_support::safetensors_bytes;
using test_support::st_tensor;
using test_support::temp_dir;

namespace {

std::vector<st_tensor> sample() {
    return {{"a", "F32", {2, 3}, f32_bytes({1, 2, 3, 4, 5, 6})},
            {"b", "BF16", {4}, std::string("\x80\x3f\x00\x40\x40\x40\x80\x40", 8)},
            {"c", "I64", {1}, std::string(8, '\x01')}};
}

}  // namespace

TEST_CASE("load_safetensors: names, dtypes, shapes, zero-copy data, metadata", "[safetensors]") {
    temp_dir dir("rwkv-st");
    const auto f =
        rwkv::io::load_safetensors(dir.write("m.safetensors", safetensors_bytes(sample(), "{\"format\":\"pt\"}")));
    REQUIRE(f.tensors.size() == 3);
    const auto& a = f.at("a");
    CHECK(a.type == dtype::f32);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3});
    float x[6];
    std::memcpy(x, a.data.data(), 24);
    CHECK(x[5] == 6.0f);
    CHECK(a.owner == nullptr);
    CHECK(f.at("b").type == dtype::bf16);
    CHECK(f.at("c").type == dtype::i64);
    CHECK(f.metadata.front() == std::pair<std::string, std::string>{"format", "pt"});
}

TEST_CASE("load_safetensors_index: shards, and a missing shard or tensor", "[safetensors]") {
    temp_dir dir("rwkv-st");
    dir.write("s1.safetensors", safetensors_bytes({sample()[0]}));
    dir.write("s2.safetensors", safetensors_bytes({sample()[1], sample()[2]}));
    const auto idx =
        dir.write("model.safetensors.index.json",
                  R"({"metadata":{"total_size":40},"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
    const auto f = rwkv::io::load_safetensors_index(idx);
    CHECK(f.tensors.size() == 2);  // 'c' is in a shard but not in the index
    CHECK(f.mappings.size() == 2);
    CHECK(f.at("b").shape == std::vector<std::int64_t>{4});

    auto err = [&](const std::string& json) {
        const auto p = dir.write("bad.index.json", json);
        return error_of([&] { rwkv::io::load_safetensors_index(p); });
    };
    CHECK_THAT(err(R"({"weight_map":{"a":"s1.safetensors","z":"s3.safetensors"}})"),
               Catch::Contains("missing shard 's3.safetensors'") && Catch::Contains("'z'"));
    CHECK_THAT(err(R"({"weight_map":{"q":"s1.safetensors"}})"),
               Catch::Contains("tensor 'q'") && Catch::Contains("is missing"));
    CHECK_THAT(err(R"({"weight_map":{"a":"../s1.safetensors"}})"), Catch::Contains("outside the folder"));
    CHECK_THAT(err(R"({"weight_map":{"a":7}})"), Catch::Contains("not a file name"));
    CHECK_THAT(err(R"({"nothing":1})"), Catch::Contains("no 'weight_map'"));
    CHECK_THAT(err(R"({"weight_map":{}})"), Catch::Contains("empty weight_map"));
    CHECK_THAT(err("{\"weight_map\":"), Catch::Contains("bad.index.json") && Catch::Contains("invalid JSON"));
}

TEST_CASE("safetensors errors name the file and the tensor", "[safetensors]") {
    temp_dir dir("rwkv-st");
    auto err = [&](const std::string& bytes) {
        const auto p = dir.write("bad.safetensors", bytes);
        return error_of([&] { rwkv::io::load_safetensors(p); });
    };
    const std::string good = safetensors_bytes(sample());
    test_support::every_prefix_fails(good, ".safetensors", [](const auto& p) { rwkv::io::load_safetensors(p); }, {},
                                     {"truncated", "header length needs 8"});
    CHECK_THAT(err(good.substr(0, good.size() - 1)), Catch::Contains("bad.safetensors") && Catch::Contains("outside"));
    CHECK_THAT(err("abc"), Catch::Contains("not a safetensors file"));
    std::string big = good;
    test_support::set_le(big, 0, 1u << 30, 8);
    CHECK_THAT(err(big), Catch::Contains("header length 1073741824"));
    auto with = [](const std::string& header, const std::string& data) {
        std::string s;
        test_support::put_le(s, header.size(), 8);
        return s + header + data;
    };
    CHECK_THAT(err(with("{\"a\":", "")), Catch::Contains("invalid JSON"));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}})", "abcd")),
               Catch::Contains("tensor 'a' is F8_E4M3; supported: ") && Catch::Contains(rwkv::weight_format_names()));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}})", std::string(12, '\0'))),
               Catch::Contains("tensor 'a': 12 bytes stored, but F32 [4] needs 16"));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", std::string(16, '\0'))),
               Catch::Contains("non-negative"));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(16, '\0'))),
               Catch::Contains("tensor 'a'") && Catch::Contains("outside"));
    CHECK_THAT(
        err(with(
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0'))),
        Catch::Contains("'a' and 'b' overlap"));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F32","shape":[1]}})", "")), Catch::Contains("data_offsets"));
    CHECK_THAT(err(with(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", "abcd")), Catch::Contains("'dtype'"));
    CHECK_THAT(err(with(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "abcd")),
               Catch::Contains("impossible shape"));
}
