// rwkv::io::load_pth: every fixture checkpoint, synthetic checkpoints exercising the corners
// of the format, and refusal of broken or hostile files with messages naming what was wrong.

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "errors.hpp"
#include "fixtures.hpp"
#include "pickle_builder.hpp"
#include "rwkv/io/mapped_file.hpp"
#include "rwkv/io/pth.hpp"
#include "temp_files.hpp"
#include "zip_writer.hpp"

namespace fs = std::filesystem;
using rwkv::io::dtype;
using rwkv::io::load_pth;
using rwkv::io::tensor_file;
using rwkv::io::tensor_view;
using shape_t = std::vector<std::int64_t>;
using test_support::error_of;
using test_support::make_zip;
using test_support::pickle_builder;
using test_support::set_le;
using test_support::temp_dir;
using test_support::zip_in;
using test_support::zip_out;

namespace {

std::string load_error(const fs::path& p) {
    const std::string msg = error_of([&] { load_pth(p); });
    CHECK(msg.rfind(p.string() + ": ", 0) == 0);  // every message starts with the path
    return msg;
}

struct tensor_spec {
    std::string name, storage_class, key;
    std::int64_t numel, offset;
    shape_t shape, stride;
};

std::string state_dict(const std::vector<tensor_spec>& ts, bool ordered = false, bool with_other_keys = false) {
    pickle_builder p;
    p.proto(2);  // as torch.save writes it
    if (ordered) p.global("collections", "OrderedDict").op(')').op('R');
    else p.op('}');
    p.op('(');
    for (const tensor_spec& t : ts) p.str(t.name).tensor(t.storage_class, t.key, t.numel, t.offset, t.shape, t.stride);
    if (with_other_keys) p.str("_strategy").str("cpu fp32").str("_version").i4(3);
    p.op('u');
    if (ordered) p.op('}').str("_metadata").op('}').op('s').op('b');  // state_dict's BUILD
    return p.op('.').b;
}

std::string floats(std::initializer_list<float> v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), std::data(v), s.size());
    return s;
}

// A small valid checkpoint: shared storage "0" (10 f32) viewed by two tensors, a bf16 storage
// "1", a scalar, an empty tensor, size-1 dimensions with arbitrary strides.
std::vector<tensor_spec> sample_tensors() {
    return {
        {"a", "FloatStorage", "0", 10, 0, {4}, {1}},
        {"b", "FloatStorage", "0", 10, 4, {2, 3}, {3, 1}},
        {"c", "BFloat16Storage", "1", 3, 0, {1, 3, 1}, {99, 1, 7}},
        {"scalar", "FloatStorage", "0", 10, 9, {}, {}},
        {"empty", "HalfStorage", "2", 0, 0, {0, 5}, {5, 1}},
    };
}

std::vector<zip_in> sample_records(const std::string& prefix, const std::string& pkl) {
    return {
        {prefix + "/data.pkl", pkl},
        {prefix + "/byteorder", "little"},
        {prefix + "/data/0", floats({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
        {prefix + "/data/1", std::string("\x80\x3f\x00\x40\x40\xc0", 6)},  // 1, 2, -3 in bf16
        {prefix + "/data/2", ""},
        {prefix + "/version", "3\n"},
        {prefix + "/.data/serialization_id", "1234"},
    };
}

std::vector<float> to_f32(const tensor_view& t) {
    std::vector<float> out(static_cast<std::size_t>(t.numel()));
    const std::byte* p = t.data.data();
    for (std::size_t i = 0; i < out.size(); ++i) {
        switch (t.type) {
            case dtype::f32: std::memcpy(&out[i], p + 4 * i, 4); break;
            case dtype::bf16: {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
                break;
            }
            case dtype::f16: {
                std::uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
                const float mag = e == 0    ? std::ldexp(static_cast<float>(m), -24)
                                  : e == 31 ? INFINITY
                                            : std::ldexp(static_cast<float>(m | 0x400), e - 25);
                out[i] = (h & 0x8000) ? -mag : mag;
                break;
            }
            default: FAIL("unexpected dtype");
        }
    }
    return out;
}

float round_to_bf16(float f) {  // round to nearest even, as torch's .to(bfloat16)
    std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000u;
    return std::bit_cast<float>(u);
}

struct fixture_info {
    const char* file;
    std::size_t tensors;
    dtype type;
};

const fixture_info all_fixtures[] = {
    {"tiny/tiny-rwkv-5v2-730K.pth", 270, dtype::f32},
    {"tiny/tiny-rwkv-6v0-1m.pth", 342, dtype::f32},
    {"random/rand-x052-L2-D128-H64-V1000.pth", 50, dtype::f32},
    {"random/rand-x052-L3-D256-H64-V4099.pth", 72, dtype::f32},
    {"random/rand-x060-L2-D128-H64-V1000.pth", 62, dtype::f32},
    {"random/rand-x060-L3-D256-H64-V4099.pth", 90, dtype::f32},
    {"random/rand-x060-L2-D128-H64-V1000.bf16.pth", 62, dtype::bf16},
    {"random/rand-x060-L2-D128-H64-V1000.fp16.pth", 62, dtype::f16},
};

}  // namespace

TEST_CASE("load_pth reads every fixture checkpoint", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    for (const fixture_info& fx : all_fixtures) {
        INFO(fx.file);
        const tensor_file f = load_pth(fixtures::dir() / fx.file);
        CHECK(f.path == fixtures::dir() / fx.file);
        REQUIRE(f.mappings.size() == 1);
        const auto whole = f.mappings[0]->bytes();
        CHECK(f.tensors.size() == fx.tensors);
        CHECK(f.other_keys.empty());
        for (const tensor_view& t : f.tensors) {
            INFO(t.name);
            CHECK(t.type == fx.type);
            CHECK(t.data.size() == static_cast<std::size_t>(t.numel()) * rwkv::io::dtype_size(t.type));
            CHECK(t.data.data() >= whole.data());
            CHECK(t.data.data() + t.data.size() <= whole.data() + whole.size());
            CHECK(reinterpret_cast<std::uintptr_t>(t.data.data()) % 64 == 0);  // PyTorch alignment
        }
        CHECK(f.tensors.front().name == "emb.weight");
        CHECK(f.tensors.back().name == "head.weight");
        CHECK(f.at("emb.weight").shape == f.at("head.weight").shape);
    }
}

TEST_CASE("load_pth: tiny x052 names, shapes and values", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    const tensor_file f = load_pth(fixtures::dir() / "tiny/tiny-rwkv-5v2-730K.pth");
    const tensor_view& emb = f.at("emb.weight");
    CHECK(emb.type == dtype::f32);
    CHECK(emb.shape == shape_t{256, 64});
    CHECK(emb.numel() == 256 * 64);
    const std::vector<float> v = to_f32(emb);
    // Values read independently from the zip record with Python's zipfile + struct.
    CHECK(v[0] == -0.4195382595062256f);
    CHECK(v[1] == 0.2760283946990967f);
    CHECK(v[2] == 0.0483168363571167f);
    CHECK(v[3] == 0.7368825674057007f);
    CHECK(v[v.size() - 4] == 0.47728800773620605f);
    CHECK(v.back() == -0.23179149627685547f);
    CHECK(f.at("blocks.0.att.time_decay").shape == shape_t{8, 8});
    CHECK(f.at("blocks.11.ffn.key.weight").shape == shape_t{256, 64});
    CHECK(f.at("blocks.0.ln0.weight").shape == shape_t{64});
    CHECK(f.find("blocks.12.ln1.weight") == nullptr);
}

TEST_CASE("load_pth: tiny x060 shapes", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    const tensor_file f = load_pth(fixtures::dir() / "tiny/tiny-rwkv-6v0-1m.pth");
    CHECK(f.at("blocks.0.att.time_maa_w1").shape == shape_t{64, 160});
    CHECK(f.at("blocks.0.att.time_maa_w2").shape == shape_t{5, 32, 64});
    CHECK(f.at("blocks.0.att.time_decay").shape == shape_t{1, 1, 64});
    CHECK(f.at("blocks.0.att.time_faaaa").shape == shape_t{8, 8});
    CHECK(f.at("blocks.1.att.time_decay_w2").shape == shape_t{64, 64});
    CHECK(f.at("blocks.11.ffn.key.weight").shape == shape_t{224, 64});
    CHECK(f.at("ln_out.bias").shape == shape_t{64});
}

TEST_CASE("load_pth: bf16 and fp16 files hold the f32 weights rounded", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    const tensor_file f32 = load_pth(fixtures::dir() / "random/rand-x060-L2-D128-H64-V1000.pth");
    const tensor_file bf16 = load_pth(fixtures::dir() / "random/rand-x060-L2-D128-H64-V1000.bf16.pth");
    const tensor_file fp16 = load_pth(fixtures::dir() / "random/rand-x060-L2-D128-H64-V1000.fp16.pth");
    REQUIRE(bf16.tensors.size() == f32.tensors.size());
    REQUIRE(fp16.tensors.size() == f32.tensors.size());
    for (std::size_t i = 0; i < f32.tensors.size(); ++i) {
        const tensor_view& ref = f32.tensors[i];
        INFO(ref.name);
        REQUIRE(bf16.tensors[i].name == ref.name);
        REQUIRE(fp16.tensors[i].name == ref.name);
        CHECK(bf16.tensors[i].shape == ref.shape);
        CHECK(fp16.tensors[i].shape == ref.shape);
        CHECK(bf16.tensors[i].type == dtype::bf16);
        CHECK(fp16.tensors[i].type == dtype::f16);
        const std::vector<float> r = to_f32(ref), b = to_f32(bf16.tensors[i]), h = to_f32(fp16.tensors[i]);
        std::size_t bad_b = 0, bad_h = 0;
        for (std::size_t k = 0; k < r.size(); ++k) {
            if (b[k] != round_to_bf16(r[k])) ++bad_b;
            // Nearest f16: within half an f16 ulp at the value's magnitude.
            const float a = std::fabs(r[k]);
            const float ulp = a < std::ldexp(1.0f, -14) ? std::ldexp(1.0f, -24) : std::ldexp(1.0f, std::ilogb(a) - 10);
            if (!(std::fabs(h[k] - r[k]) <= 0.5f * ulp)) ++bad_h;
        }
        CHECK(bad_b == 0);
        CHECK(bad_h == 0);
    }
}

TEST_CASE("load_pth: at() and find()", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    const fs::path p = fixtures::dir() / "tiny/tiny-rwkv-6v0-1m.pth";
    const tensor_file f = load_pth(p);
    CHECK(f.find("head.weight") == &f.at("head.weight"));
    CHECK(f.find("nope") == nullptr);
    const std::string msg = error_of([&] { f.at("nope"); });
    CHECK(msg == p.string() + ": missing tensor 'nope'");
}

TEST_CASE("load_pth: copies of the result keep the mapping alive", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    const fs::path p = tmp.write("m.pth", make_zip(sample_records("m", state_dict(sample_tensors()))).bytes);
    tensor_file copy;
    {
        const tensor_file f = load_pth(p);
        copy = f;
    }
    fs::remove(p);
    CHECK(to_f32(copy.at("b")) == std::vector<float>{4, 5, 6, 7, 8, 9});
}

TEST_CASE("load_pth: synthetic checkpoints", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    for (bool ordered : {false, true}) {
        INFO("OrderedDict " << ordered);
        // Folder name with a space and dots: the reader must not assume it.
        const fs::path p = tmp.write(
            "s.pth", make_zip(sample_records("my model.v2", state_dict(sample_tensors(), ordered, true))).bytes);
        const tensor_file f = load_pth(p);
        REQUIRE(f.tensors.size() == 5);
        CHECK(f.other_keys == std::vector<std::string>{"_strategy", "_version"});
        CHECK(to_f32(f.at("a")) == std::vector<float>{0, 1, 2, 3});
        CHECK(f.at("b").shape == shape_t{2, 3});
        CHECK(to_f32(f.at("b")) == std::vector<float>{4, 5, 6, 7, 8, 9});  // storage_offset 4
        CHECK(f.at("a").data.data() + 16 == f.at("b").data.data());        // shared storage
        CHECK(f.at("c").type == dtype::bf16);
        CHECK(to_f32(f.at("c")) == std::vector<float>{1, 2, -3});
        CHECK(f.at("scalar").shape.empty());
        CHECK(f.at("scalar").numel() == 1);
        CHECK(to_f32(f.at("scalar")) == std::vector<float>{9});
        CHECK(f.at("empty").numel() == 0);
        CHECK(f.at("empty").data.empty());
        CHECK(f.at("empty").type == dtype::f16);
    }
}

TEST_CASE("load_pth refuses bad files with messages naming the problem", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    const std::string pkl = state_dict(sample_tensors());
    auto records = sample_records("arch", pkl);
    auto write_zip = [&](const std::vector<zip_in>& r) { return tmp.write("bad.pth", make_zip(r).bytes); };

    SECTION("missing file") {
        const fs::path p = tmp.path / "missing.pth";
        CHECK_THAT(load_error(p), Catch::Contains(std::strerror(ENOENT)));
    }
    SECTION("directory") { CHECK_THAT(load_error(tmp.path), Catch::Contains(std::strerror(EISDIR))); }
    SECTION("empty file") {
        const std::string msg = load_error(tmp.write("empty.pth", ""));
        CHECK_THAT(msg, Catch::Contains("not a PyTorch zip checkpoint"));
        CHECK_THAT(msg, Catch::Contains("empty file"));
    }
    SECTION("random bytes") {
        std::mt19937 rng(7);
        std::string junk(4096, '\0');
        for (char& c : junk) c = static_cast<char>(rng() & 0xFF);
        junk[0] = 'J';
        CHECK_THAT(load_error(tmp.write("junk.pth", junk)), Catch::Contains("not a PyTorch zip checkpoint"));
    }
    SECTION("legacy pickle checkpoint") {
        const std::string legacy("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
        const std::string msg = load_error(tmp.write("old.pth", legacy));
        CHECK_THAT(msg, Catch::Contains("not a PyTorch zip checkpoint"));
        CHECK_THAT(msg, Catch::Contains("legacy"));
    }
    SECTION("a zip without data.pkl") {
        CHECK_THAT(load_error(write_zip({{"x/version", "3"}})), Catch::Contains("data.pkl"));
    }
    SECTION("two data.pkl records") {
        records.push_back({"other/data.pkl", pkl});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("several"));
    }
    SECTION("corrupted local header signature") {
        zip_out z = make_zip(records);
        z.bytes[z.local[2]] = 'Q';
        const std::string msg = load_error(tmp.write("bad.pth", z.bytes));
        CHECK_THAT(msg, Catch::Contains("'arch/data/0'"));
        CHECK_THAT(msg, Catch::Contains("local header signature"));
    }
    SECTION("data offset past the end") {
        zip_out z = make_zip(records);
        set_le(z.bytes, z.central[3] + 42, z.bytes.size() - 20, 4);
        const std::string msg = load_error(tmp.write("bad.pth", z.bytes));
        CHECK_THAT(msg, Catch::Contains("'arch/data/1'"));
        CHECK_THAT(msg, Catch::Contains("outside the file"));
        set_le(z.bytes, z.central[3] + 42, z.local[3], 4);
        set_le(z.bytes, z.central[3] + 20, 1000000, 4);
        set_le(z.bytes, z.central[3] + 24, 1000000, 4);
        CHECK_THAT(load_error(tmp.write("bad.pth", z.bytes)), Catch::Contains("runs past the end"));
    }
    SECTION("unsupported compression method") {
        zip_out z = make_zip(records);
        set_le(z.bytes, z.central[0] + 10, 12, 2);  // bzip2
        const std::string msg = load_error(tmp.write("bad.pth", z.bytes));
        CHECK_THAT(msg, Catch::Contains("'arch/data.pkl'"));
        CHECK_THAT(msg, Catch::Contains("compression method 12 is not supported (only stored and deflate entries)"));
    }
    SECTION("unknown pickle opcode") {
        std::string bad = pkl;
        bad[2] = '\xf0';
        records[0].data = bad;
        const std::string msg = load_error(write_zip(records));
        CHECK_THAT(msg, Catch::Contains("arch/data.pkl"));
        CHECK_THAT(msg, Catch::Contains("unknown pickle opcode 0xf0"));
        CHECK_THAT(msg, Catch::Contains("offset 2"));
    }
    SECTION("forbidden global") {
        pickle_builder p;
        p.proto().op('}').op('(').str("x").global("os", "system").str("rm -rf /").op(0x85).op('R');
        records[0].data = p.op('u').op('.').b;
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("unsupported object in checkpoint: os.system"));
    }
    SECTION("storage record too small for its tensor") {
        records[0].data = state_dict({{"w", "FloatStorage", "0", 10, 2, {3, 3}, {3, 1}}});
        const std::string msg = load_error(write_zip(records));
        CHECK_THAT(msg, Catch::Contains("tensor 'w'"));
        CHECK_THAT(msg, Catch::Contains("exceed record 'arch/data/0'"));
    }
    SECTION("element size counts: 10 floats are not 6 doubles") {
        records[0].data = state_dict({{"w", "DoubleStorage", "0", 6, 0, {6}, {1}}});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("tensor 'w'"));
    }
    SECTION("huge offsets and shapes do not overflow") {
        records[0].data = state_dict({{"w", "FloatStorage", "0", 10, 2147483647, {1}, {1}}});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("tensor 'w'"));
        records[0].data =
            state_dict({{"w", "FloatStorage", "0", 10, 0, {2147483647, 2147483647, 2147483647}, {1, 1, 1}}});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("too large"));
    }
    SECTION("self-overlapping (broadcast) stride") {
        records[0].data = state_dict({{"t", "FloatStorage", "0", 10, 0, {4, 5}, {1, 0}}});
        const std::string msg = load_error(write_zip(records));
        CHECK_THAT(msg, Catch::Contains("tensor 't'") && Catch::Contains("stride [1, 0]") &&
                            Catch::Contains("overlaps itself"));
    }
    SECTION("strided view reaching past its storage") {
        records[0].data = state_dict({{"t", "FloatStorage", "0", 10, 0, {2, 2}, {1, 9}}});
        const std::string msg = load_error(write_zip(records));
        CHECK_THAT(msg, Catch::Contains("tensor 't'") && Catch::Contains("exceed record 'arch/data/0'"));
    }
    SECTION("negative stride") {
        records[0].data = state_dict({{"t", "FloatStorage", "0", 10, 0, {2, 3}, {-1, 2}}});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("tensor 't'") && Catch::Contains("negative stride"));
    }
    SECTION("wrapper prefix on some names only") {
        records[0].data = state_dict(
            {{"module.a", "FloatStorage", "0", 10, 0, {4}, {1}}, {"b", "FloatStorage", "0", 10, 4, {2, 3}, {3, 1}}});
        CHECK_THAT(load_error(write_zip(records)),
                   Catch::Contains("1 of 2 tensor names start with the training-wrapper prefix 'module.'") &&
                       Catch::Contains("'module.a'") && Catch::Contains("(e.g. 'b')"));
    }
    SECTION("corrupt deflated entry") {
        auto z = records;
        z[2].deflate = true;
        zip_out out = make_zip(z);
        const auto at = rwkv::io::read_zip(test_support::span_of(out.bytes), "x").entries[2].data_offset;
        out.bytes[at] = static_cast<char>(0xFF);  // block type 3: invalid in any deflate stream
        CHECK_THAT(load_error(tmp.write("bad.pth", out.bytes)), Catch::Contains("zip entry 'arch/data/0'"));
    }
    SECTION("missing storage record") {
        records[0].data = state_dict({{"t", "FloatStorage", "7", 1, 0, {1}, {1}}});
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("'arch/data/7' is missing"));
    }
    SECTION("big-endian checkpoint") {
        records[1].data = "big";
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("big-endian"));
        records[1].data = "middle";
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("arch/byteorder"));
    }
    SECTION("top level is not a dict") {
        records[0].data = pickle_builder().proto().op(']').op('.').b;
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("not a dict"));
    }
    SECTION("non-string key") {
        records[0].data = pickle_builder().proto().op('}').i4(1).op('N').op('s').op('.').b;
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("not a string"));
    }
    SECTION("duplicate key") {
        auto ts = sample_tensors();
        ts.push_back(ts[0]);
        records[0].data = state_dict(ts);
        CHECK_THAT(load_error(write_zip(records)), Catch::Contains("duplicate key 'a'"));
    }
}

TEST_CASE("load_pth: truncated fixture copies throw rwkv::error", "[pth]") {
    RWKV_REQUIRE_FIXTURES();
    temp_dir tmp("rwkv-pth-test");
    const std::string full = fixtures::read_text(fixtures::dir() / "tiny/tiny-rwkv-5v2-730K.pth");
    const std::size_t n = full.size();
    for (std::size_t len :
         {std::size_t{0}, std::size_t{1}, std::size_t{4}, std::size_t{10}, std::size_t{30}, std::size_t{100},
          std::size_t{1000}, n / 3, n / 2, n - 1000, n - 100, n - 46, n - 23, n - 22, n - 21, n - 2, n - 1}) {
        INFO("truncated to " << len << " of " << n);
        const fs::path p = tmp.write("cut.pth", full.substr(0, len));
        CHECK_THROWS_AS(load_pth(p), rwkv::error);
    }
}

TEST_CASE("load_pth: every truncation and byte corruption of a small checkpoint is safe", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    const std::string full = make_zip(sample_records("m", state_dict(sample_tensors(), true, true))).bytes;
    const fs::path p = tmp.path / "f.pth";
    REQUIRE_NOTHROW(load_pth(tmp.write("f.pth", full)));
    for (std::size_t len = 0; len < full.size(); ++len) {
        INFO("truncated to " << len);
        tmp.write("f.pth", full.substr(0, len));
        CHECK_THROWS_AS(load_pth(p), rwkv::error);
    }
    // Flipped bytes: either a clean rwkv::error or tensors inside the file (ASan watches reads).
    for (std::size_t i = 0; i < full.size(); ++i) {
        {  // one inverted byte per position: the in-memory zip/pickle tests try many more values
            std::string s = full;
            s[i] = static_cast<char>(~s[i]);
            tmp.write("f.pth", s);
            try {
                const tensor_file f = load_pth(p);
                const auto whole = f.mappings.at(0)->bytes();
                for (const tensor_view& t : f.tensors) {
                    CHECK(t.data.data() >= whole.data());
                    CHECK(t.data.data() + t.data.size() <= whole.data() + whole.size());
                    CHECK(t.data.size() == static_cast<std::size_t>(t.numel()) * rwkv::io::dtype_size(t.type));
                }
            } catch (const rwkv::error&) {}
        }
    }
}

// ---- files PyTorch loads that torch.save does not write from a plain model (issue 12) ----------

namespace {

bool has_note(const tensor_file& f, const std::string& part) {
    return std::any_of(f.notes.begin(), f.notes.end(),
                       [&](const std::string& n) { return n.find(part) != std::string::npos; });
}

fs::path corpus_file(const std::string& name) {
    return fs::path(RWKV_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "pth" / name;
}

}  // namespace

TEST_CASE("load_pth: deflate-compressed entries are inflated into owned memory", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    auto records = sample_records("arch", state_dict(sample_tensors()));
    const tensor_file stored = load_pth(tmp.write("stored.pth", make_zip(records).bytes));
    CHECK(stored.notes.empty());
    for (auto& r : records) r.deflate = true;
    const tensor_file f = load_pth(tmp.write("deflated.pth", make_zip(records).bytes));
    REQUIRE(f.tensors.size() == stored.tensors.size());
    for (std::size_t i = 0; i < f.tensors.size(); ++i) {
        CHECK(f.tensors[i].name == stored.tensors[i].name);
        CHECK(f.tensors[i].shape == stored.tensors[i].shape);
        CHECK(std::equal(f.tensors[i].data.begin(), f.tensors[i].data.end(), stored.tensors[i].data.begin(),
                         stored.tensors[i].data.end()));
    }
    CHECK(f.at("a").owner != nullptr);  // the inflated record outlives the zip listing
    CHECK(has_note(f, "inflated deflate-compressed zip entries"));
    // The same, zipped by CPython's zipfile module (tools/make-fuzz-seeds.py).
    const tensor_file py = load_pth(corpus_file("deflated.pth"));
    CHECK(to_f32(py.at("emb.weight")) == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f});
}

TEST_CASE("load_pth: float64 tensors are converted to float32 at read", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    std::string doubles(5 * 8, '\0');
    const double v[5] = {1.5, -2.0, 1e-3, 1e300, -1e300};
    std::memcpy(doubles.data(), v, sizeof v);
    auto records = sample_records("arch", state_dict({{"d", "DoubleStorage", "3", 5, 0, {5}, {1}}}));
    records.push_back({"arch/data/3", doubles});
    const tensor_file f = load_pth(tmp.write("f64.pth", make_zip(records).bytes));
    const tensor_view& d = f.at("d");
    CHECK(d.type == dtype::f32);
    CHECK(d.data.size() == 5 * 4);
    const float inf = std::numeric_limits<float>::infinity();
    CHECK(to_f32(d) == std::vector<float>{1.5f, -2.0f, 1e-3f, inf, -inf});  // beyond float range: +-inf, as torch
    CHECK(has_note(f, "converted 1 float64 tensor to float32 (first: 'd')"));
    const tensor_file py = load_pth(corpus_file("float64.pth"));
    CHECK(to_f32(py.at("x")) == std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f});
}

TEST_CASE("load_pth: non-contiguous tensors are gathered into a contiguous copy", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    // Storage 0..9; "t" is the transpose of a [2, 3] matrix at offset 1; "u" a [2, 2] slice with row stride 4.
    auto records = sample_records("arch", state_dict({{"t", "FloatStorage", "0", 10, 1, {3, 2}, {1, 3}},
                                                      {"u", "FloatStorage", "0", 10, 2, {2, 2}, {4, 1}}}));
    const tensor_file f = load_pth(tmp.write("strided.pth", make_zip(records).bytes));
    CHECK(to_f32(f.at("t")) == std::vector<float>{1, 4, 2, 5, 3, 6});
    CHECK(to_f32(f.at("u")) == std::vector<float>{2, 3, 6, 7});
    CHECK(f.at("t").owner != nullptr);
    CHECK(has_note(f, "copied 2 non-contiguous tensors into contiguous memory (first: 't')"));
    const tensor_file py = load_pth(corpus_file("transposed.pth"));  // [3, 2] stride (1, 3) over 0, .25, ..
    CHECK(to_f32(py.at("x")) == std::vector<float>{0, 0.75f, 0.25f, 1.0f, 0.5f, 1.25f});
}

TEST_CASE("load_pth: training wrappers (prefixes, a nested state_dict) are unwrapped with a note", "[pth]") {
    temp_dir tmp("rwkv-pth-test");
    SECTION("DDP 'module.' and Fabric '_forward_module.' prefixes, nested") {
        auto records = sample_records(
            "arch", state_dict({{"_forward_module.module.a", "FloatStorage", "0", 10, 0, {4}, {1}},
                                {"_forward_module.module.b", "FloatStorage", "0", 10, 4, {2, 3}, {3, 1}}}));
        const tensor_file f = load_pth(tmp.write("wrapped.pth", make_zip(records).bytes));
        REQUIRE(f.tensors.size() == 2);
        CHECK(f.tensors[0].name == "a");
        CHECK(f.tensors[1].name == "b");
        CHECK(to_f32(f.at("b")) == std::vector<float>{4, 5, 6, 7, 8, 9});
        CHECK(has_note(f, "stripped the training-wrapper prefix '_forward_module.' from all 2 tensor names"));
        CHECK(has_note(f, "stripped the training-wrapper prefix 'module.' from all 2 tensor names"));
        CHECK(load_pth(corpus_file("module-prefix.pth")).find("emb.weight") != nullptr);
        CHECK(load_pth(corpus_file("forward-module-prefix.pth")).find("emb.weight") != nullptr);
    }
    SECTION("a Lightning checkpoint {'epoch': .., 'state_dict': {..}}") {
        pickle_builder p;
        p.proto(2).op('}').op('(').str("epoch").i1(3).str("state_dict").op('}').op('(');
        p.str("a").tensor("FloatStorage", "0", 10, 0, {4}, {1});
        p.op('u').op('u').op('.');
        const tensor_file f = load_pth(tmp.write("lightning.pth", make_zip(sample_records("arch", p.b)).bytes));
        REQUIRE(f.tensors.size() == 1);
        CHECK(to_f32(f.at("a")) == std::vector<float>{0, 1, 2, 3});
        CHECK(has_note(f, "using the 'state_dict' entry of a training checkpoint"));
        CHECK(load_pth(corpus_file("state-dict-nesting.pth")).find("emb.weight") != nullptr);
    }
}

TEST_CASE("load_pth: a checkpoint whose 'state_dict' is itself is read without looping", "[pth][regression]") {
    temp_dir tmp("rwkv-pth-test");
    pickle_builder p;
    p.proto(2).empty_dict().put(0).str("state_dict").get(0).op('s').stop();
    const tensor_file f = load_pth(tmp.write("cycle.pth", make_zip(sample_records("arch", p.b)).bytes));
    CHECK(f.tensors.empty());
    CHECK(f.other_keys == std::vector<std::string>{"state_dict"});
}
