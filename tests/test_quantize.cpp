// rwkv/quantize.hpp + io/gguf_write.hpp (rwkv-quantize): a GGUF written from a fixture .pth is
// byte-identical to llama.cpp's own file of the same model for Q8_0 / Q5_1 / Q4_0 (names, metadata,
// layouts, the head mix and the encoders all agree), and equal in metadata and tensors (names,
// shapes, types) for F32 / F16; files reload with logits bit-identical to quantizing on load
// (pure mode), K-quants and the 2^(layer div 6) rescale included; errors name the problem.

#include <rwkv/io/gguf.hpp>
#include <rwkv/io/gguf_vocab.hpp>
#include <rwkv/io/open.hpp>
#include <rwkv/model.hpp>
#include <rwkv/quantize.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "temp_files.hpp"

namespace {

const std::string fixtures = RWKV_FIXTURES_DIR;
const std::string rand_pth = fixtures + "/random/rand-x060-L2-D128-H64-V1000.pth";
const std::string vocab_file = fixtures + "/rwkv_vocab_v20230424.txt";

std::vector<char> bytes_of(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const std::vector<rwkv::token> ids = {903, 612, 820, 15, 507, 0, 767, 857, 180, 76, 437, 201, 484, 630, 96, 98};

template <class M>
std::vector<float> logits_of(const M& m) {
    auto s = m.new_state();
    std::vector<float> out;
    for (rwkv::token t : ids) {
        const auto l = m.forward(t, s);
        out.insert(out.end(), l.begin(), l.end());
    }
    std::vector<float> all(ids.size() * static_cast<std::size_t>(m.config().vocab_size));
    auto s2 = m.new_state();
    m.forward_all(ids, s2, all);  // prefill path too
    out.insert(out.end(), all.begin(), all.end());
    return out;
}

template <class F>
void check_reload(const rwkv::io::tensor_file& in, const char* type, const std::filesystem::path& out) {
    rwkv::QuantizeOptions o;
    o.type = type;
    o.pure = true;
    rwkv::write_gguf(in, out, o);
    const auto on_load = rwkv::Model<F>::from_tensors(in);
    const auto reloaded = rwkv::Model<rwkv::stored>::load(out);
    INFO(type << ": " << reloaded.weight_type());
    CHECK(logits_of(reloaded) == logits_of(on_load));
}

}  // namespace

TEST_CASE("rwkv-quantize output of the fixture .pth is llama.cpp's file, byte for byte", "[quantize]") {
    test_support::temp_dir dir("rwkv-quantize");
    const rwkv::WorldTokenizer vocab{std::filesystem::path(vocab_file)};
    const auto in = rwkv::io::open(rand_pth);
    for (const char* t : {"Q8_0", "Q5_1", "Q4_0", "F32", "F16"}) {
        std::string lower = t;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        rwkv::QuantizeOptions o;
        o.type = lower;
        o.vocab = &vocab;
        o.name = "Rand X060 L2 D128 H64 V1000 HF";
        const auto out = dir.path / (lower + ".gguf");
        rwkv::write_gguf(in, out, o);
        const std::string theirs = fixtures + "/formats/gguf/rand-x060-L2-D128-H64-V1000-" + t + ".gguf";
        INFO(t);
        const auto a = rwkv::io::read_gguf(out), b = rwkv::io::read_gguf(theirs);
        // Metadata: same keys, types and values.
        REQUIRE(a.kv.size() == b.kv.size());
        for (const auto& [key, va] : a.kv) {
            INFO("key " << key);
            const auto* vb = b.find(key);
            REQUIRE(vb != nullptr);
            CHECK(va.type == vb->type);
            CHECK(va.u == vb->u);
            CHECK(va.f == vb->f);
            CHECK(va.s == vb->s);
            CHECK(va.strings == vb->strings);
            CHECK(va.ints == vb->ints);
        }
        // Tensors: same names, shapes (ne), types and bytes (the converter orders float files
        // differently, so compare by name).
        REQUIRE(a.tensors.size() == b.tensors.size());
        for (const auto& ta : a.tensors) {
            const auto it =
                std::find_if(b.tensors.begin(), b.tensors.end(), [&](const auto& tb) { return tb.name == ta.name; });
            INFO("tensor " << ta.name);
            REQUIRE(it != b.tensors.end());
            CHECK(ta.shape == it->shape);
            CHECK(ta.type == it->type);
            CHECK(std::equal(ta.data.begin(), ta.data.end(), it->data.begin(), it->data.end()));
        }
        if (std::string(t).front() == 'Q') CHECK(bytes_of(out) == bytes_of(theirs));  // llama-quantize's order
        // The embedded vocabulary reads back as the same World tokenizer.
        const auto tok = rwkv::io::gguf_tokenizer(out);
        for (rwkv::token id : {1, 97, 261, 999}) CHECK(tok.token_bytes(id) == vocab.token_bytes(id));
    }
}

TEST_CASE("rwkv-quantize output reloads with the logits of quantizing on load", "[quantize]") {
    test_support::temp_dir dir("rwkv-quantize");
    const auto in = rwkv::io::open(rand_pth);
    check_reload<rwkv::q8_0>(in, "q8_0", dir.path / "a.gguf");
    check_reload<rwkv::q4_0>(in, "q4_0", dir.path / "b.gguf");
    check_reload<rwkv::q4_1>(in, "q4_1", dir.path / "c.gguf");
    check_reload<rwkv::q5_0>(in, "q5_0", dir.path / "d.gguf");
    check_reload<rwkv::q5_1>(in, "q5_1", dir.path / "e.gguf");
    check_reload<float>(in, "f32", dir.path / "h.gguf");
    // (f16 / bf16 are not compared bit for bit: Model<half> keeps the LoRA matrices in f16, the
    // GGUF keeps them in F32 as llama.cpp does.)
    // K-quants need rows of 256; 7 layers exercise the 2^(layer div 6) rescale of the file.
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 7;
    c.n_embd = 256;
    c.head_size = 64;
    c.dim_ffn = 512;
    c.vocab_size = 1000;
    const auto k = rwkv::detail::random_tensors<float>(c, 3, rwkv::Init::fast);
    check_reload<rwkv::q4_k>(k, "q4_k_m", dir.path / "i.gguf");
    check_reload<rwkv::q5_k>(k, "q5_k_m", dir.path / "j.gguf");
    check_reload<rwkv::q6_k>(k, "q6_k", dir.path / "k.gguf");
    check_reload<rwkv::q8_0>(k, "q8_0", dir.path / "l.gguf");
}

TEST_CASE("q4_k_m mixes like llama.cpp: Q6_K head and value matrices in the use-more-bits layers", "[quantize]") {
    test_support::temp_dir dir("rwkv-quantize");
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 8;
    c.n_embd = 256;
    c.head_size = 64;
    c.dim_ffn = 320;  // not a multiple of 256: channel_mix_value rows fall back to Q5_0
    c.vocab_size = 300;
    rwkv::QuantizeOptions o;
    o.type = "q4_k_m";
    rwkv::write_gguf(rwkv::detail::random_tensors<float>(c, 5, rwkv::Init::fast), dir.path / "m.gguf", o);
    const auto g = rwkv::io::read_gguf(dir.path / "m.gguf");
    auto type_of = [&](const std::string& name) {
        for (const auto& t : g.tensors)
            if (t.name == name) return t.type;
        FAIL("no tensor " << name);
        return rwkv::dtype::f32;
    };
    CHECK(type_of("output.weight") == rwkv::dtype::q6_k);
    CHECK(type_of("token_embd.weight") == rwkv::dtype::q4_k);
    CHECK(type_of("blk.0.time_mix_value.weight") == rwkv::dtype::q6_k);  // first eighth
    CHECK(type_of("blk.1.time_mix_value.weight") == rwkv::dtype::q4_k);
    CHECK(type_of("blk.3.time_mix_value.weight") == rwkv::dtype::q6_k);     // every third
    CHECK(type_of("blk.7.time_mix_value.weight") == rwkv::dtype::q6_k);     // last eighth
    CHECK(type_of("blk.1.channel_mix_value.weight") == rwkv::dtype::q5_0);  // 320 columns: Q4_K → Q5_0
    CHECK(type_of("blk.1.time_mix_w1.weight") == rwkv::dtype::f32);
    CHECK(g.integer("general.file_type").value_or(-1) == 15);
    CHECK(rwkv::Model<rwkv::stored>::load(dir.path / "m.gguf").config().n_layer == 8);
}

TEST_CASE("rwkv-quantize refuses unknown types by name and writes nothing", "[quantize]") {
    test_support::temp_dir dir("rwkv-quantize");
    rwkv::QuantizeOptions o;
    o.type = "q3_k_xl";
    CHECK_THROWS_WITH(rwkv::write_gguf(rwkv::io::open(rand_pth), dir.path / "x.gguf", o),
                      Catch::Contains("unknown quantization type 'q3_k_xl'") && Catch::Contains("q4_k_m"));
    CHECK(!std::filesystem::exists(dir.path / "x.gguf"));
    rwkv::io::gguf_writer w;
    CHECK_THROWS_WITH(w.add_tensor("t", {33}, rwkv::dtype::q8_0, std::vector<std::byte>(34)),
                      Catch::Contains("not a whole number"));
    CHECK_THROWS_WITH(w.add_tensor("t", {32}, rwkv::dtype::q8_0, std::vector<std::byte>(33)),
                      Catch::Contains("has 33 bytes"));
}
