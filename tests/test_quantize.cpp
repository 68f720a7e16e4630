// rwkv/quantize.hpp + io/gguf_write.hpp (rwkv-quantize): a GGUF written from a fixture .pth is
// byte-identical to llama.cpp's own file of the same model for Q8_0 / Q5_1 / Q4_0 (names, metadata,
// layouts, the head mix and the encoders all agree), and equal in metadata and tensors (names,
// shapes, types) for F32 / F16; files reload with logits bit-identical to quantizing on load
// (pure mode), K-quants and the 2^(layer div 6) rescale included; errors name the problem.

#include <unistd.h>

#include <rwkv/io/gguf.hpp>
#include <rwkv/io/gguf_vocab.hpp>
#include <rwkv/io/open.hpp>
#include <rwkv/model.hpp>
#include <rwkv/quantize.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "errors.hpp"
#include "fixtures.hpp"
#include "format_writers.hpp"
#include "temp_files.hpp"

namespace {

const std::string fixture_dir = RWKV_FIXTURES_DIR;
const std::string rand_pth = fixture_dir + "/random/rand-x060-L2-D128-H64-V1000.pth";
const std::string vocab_file = fixture_dir + "/rwkv_vocab_v20230424.txt";

std::vector<char> bytes_of(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const std::vector<rwkv::token> ids = {903, 612, 820, 15, 507, 0, 767, 857, 180, 76, 437, 201, 484, 630, 96, 98};

template <class M>
std::vector<float> logits_of(const M& m) {
    std::vector<rwkv::token> ids;  // the list above, folded into small vocabularies
    for (rwkv::token t : ::ids) ids.push_back(t % m.config().vocab_size);
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
        const std::string theirs = fixture_dir + "/formats/gguf/rand-x060-L2-D128-H64-V1000-" + t + ".gguf";
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

namespace {

// Logits after each token fed one at a time (the goldens' mode), [tokens][V].
template <class M>
std::vector<float> step_logits(const M& m, const std::vector<rwkv::token>& toks) {
    auto s = m.new_state();
    std::vector<float> out;
    for (rwkv::token t : toks) {
        const auto l = m.forward(t, s);
        out.insert(out.end(), l.begin(), l.end());
    }
    return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    float m = 0.0f;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

}  // namespace

TEST_CASE("x052 (rwkv5) GGUF: written, reloaded, same logits as quantizing on load", "[quantize][rwkv5]") {
    RWKV_REQUIRE_FIXTURES();
    test_support::temp_dir dir("rwkv-quantize5");
    // tiny-rwkv-5v2-730K: 12 layers, so blocks 6..11 are stored divided by 2 and multiplied back.
    const auto tiny = rwkv::io::open(fixture_dir + "/tiny/tiny-rwkv-5v2-730K.pth");
    check_reload<float>(tiny, "f32", dir.path / "t32.gguf");
    check_reload<rwkv::q8_0>(tiny, "q8_0", dir.path / "t8.gguf");
    check_reload<rwkv::q4_0>(tiny, "q4_0", dir.path / "t4.gguf");
    check_reload<rwkv::q5_1>(tiny, "q5_1", dir.path / "t51.gguf");
    const auto rand2 = rwkv::io::open(fixture_dir + "/random/rand-x052-L2-D128-H64-V1000.pth");
    check_reload<rwkv::q4_1>(rand2, "q4_1", dir.path / "r41.gguf");
    check_reload<rwkv::q5_0>(rand2, "q5_0", dir.path / "r50.gguf");
    // F16 only without rescaled layers: W / 2 rounded to F16 differs from W rounded to F16 where
    // it falls into F16's subnormal range (the tiny model has such weights). x052 has no LoRA,
    // so every other tensor is as Model<half> keeps it.
    check_reload<rwkv::half>(rand2, "f16", dir.path / "r16.gguf");
    // K-quants need rows of 256; 7 layers exercise the rescale.
    rwkv::Config c;
    c.version = rwkv::Version::x052;
    c.n_layer = 7;
    c.n_embd = 256;
    c.head_size = 64;
    c.dim_ffn = 512;
    c.vocab_size = 300;
    const auto k = rwkv::detail::random_tensors<float>(c, 9, rwkv::Init::fast);
    check_reload<rwkv::q4_k>(k, "q4_k_m", dir.path / "k4.gguf");
    check_reload<rwkv::q6_k>(k, "q6_k", dir.path / "k6.gguf");
    // The file says what it is.
    const auto g = rwkv::io::read_gguf(dir.path / "t8.gguf");
    CHECK(g.string_or("general.architecture", "") == "rwkv5");
    const auto m = rwkv::Model<rwkv::stored>::load(dir.path / "t8.gguf");
    CHECK(m.config().version == rwkv::Version::x052);
    CHECK(m.config().head_size == 8);
    CHECK(m.weight_type() == "stored: Q8_0");
}

TEST_CASE("x052 (rwkv5) GGUF in F32 reproduces the fixture goldens within 1e-4", "[quantize][rwkv5]") {
    RWKV_REQUIRE_FIXTURES();
    test_support::temp_dir dir("rwkv-quantize5");
    struct golden {
        std::string pth, logits, manifest;
    };
    const golden cases[] = {
        {"/tiny/tiny-rwkv-5v2-730K.pth", "/tiny/tiny-rwkv-5v2-730K.textA.step_logits.f32", ""},
        {"/random/rand-x052-L2-D128-H64-V1000.pth", "/random/rand-x052-L2-D128-H64-V1000.logits.f32",
         "/random/rand-x052-L2-D128-H64-V1000.json"},
        {"/random/rand-x052-L3-D256-H64-V4099.pth", "/random/rand-x052-L3-D256-H64-V4099.logits.f32",
         "/random/rand-x052-L3-D256-H64-V4099.json"},
    };
    for (const auto& gc : cases) {
        INFO(gc.pth);
        rwkv::QuantizeOptions o;
        o.type = "f32";
        const auto out = dir.path / "m.gguf";
        rwkv::write_gguf(rwkv::io::open(fixture_dir + gc.pth), out, o);
        std::vector<rwkv::token> toks;
        if (gc.manifest.empty())  // text A, byte-level
            for (unsigned char ch : fixtures::read_text(fixture_dir + "/tiny/textA.txt")) toks.push_back(ch);
        else toks = fixtures::read_json(fixture_dir + gc.manifest)["tokens"].ints<rwkv::token>();
        const auto want = fixtures::read_f32(fixture_dir + gc.logits);
        const auto stored = rwkv::Model<rwkv::stored>::load(out);
        REQUIRE(want.size() == toks.size() * static_cast<std::size_t>(stored.config().vocab_size));
        CHECK(max_abs_diff(step_logits(stored, toks), want) <= 1e-4f);
        CHECK(max_abs_diff(step_logits(rwkv::Model<float>::load(out), toks), want) <= 1e-4f);
    }
}

namespace {

// A GGUF file rebuilt without one tensor and one metadata key (scalars only are copied), so that
// real files can be damaged in one place.
test_support::gguf_builder rebuilt(const std::filesystem::path& p, const std::string& drop_tensor,
                                   const std::string& drop_key = "") {
    const auto g = rwkv::io::read_gguf(p);
    test_support::gguf_builder b;
    for (const auto& [key, v] : g.kv) {
        if (key == drop_key) continue;
        if (v.type == rwkv::io::gguf_type::string) b.add_string(key, v.s);
        else if (v.type == rwkv::io::gguf_type::u32) b.add_u32(key, static_cast<std::uint32_t>(v.u));
        else if (v.type == rwkv::io::gguf_type::f32) b.add_f32(key, static_cast<float>(v.f));
    }
    for (const auto& t : g.tensors) {
        if (t.name == drop_tensor) continue;
        const int id = rwkv::weights::visit_format(t.type, [](auto f) { return decltype(f)::ggml_type; });
        b.add_tensor(t.name, {t.shape.rbegin(), t.shape.rend()}, static_cast<std::uint32_t>(id),
                     std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size()));
    }
    return b;
}

}  // namespace

TEST_CASE("x052 (rwkv5) GGUF with a missing or misshaped tensor or key: a named error", "[quantize][rwkv5]") {
    RWKV_REQUIRE_FIXTURES();
    test_support::temp_dir dir("rwkv-quantize5");
    rwkv::QuantizeOptions o;
    o.type = "q8_0";
    const auto good = dir.path / "good.gguf";
    rwkv::write_gguf(rwkv::io::open(fixture_dir + "/tiny/tiny-rwkv-5v2-730K.pth"), good, o);
    auto err = [&](const test_support::gguf_builder& b) {
        const auto p = dir.write("bad.gguf", b.build());
        return test_support::error_of([&] { rwkv::Model<rwkv::stored>::load(p); });
    };
    // The rebuild itself changes nothing.
    CHECK(rwkv::Model<rwkv::stored>::load(dir.write("same.gguf", rebuilt(good, "").build())).config().n_layer == 12);
    CHECK_THAT(err(rebuilt(good, "blk.3.time_mix_first.weight")),
               Catch::Contains("bad.gguf") && Catch::Contains("missing tensor 'blocks.3.att.time_faaaa'"));
    CHECK_THAT(err(rebuilt(good, "blk.11.channel_mix_value.weight")),
               Catch::Contains("missing tensor 'blocks.11.ffn.value.weight'"));
    CHECK_THAT(err(rebuilt(good, "", "rwkv5.rescale_every_n_layers")),
               Catch::Contains("missing metadata 'rwkv5.rescale_every_n_layers'"));
    auto b = rebuilt(good, "blk.2.time_mix_ln.weight");
    b.add_tensor("blk.2.time_mix_ln.weight", {32}, 0, test_support::f32_bytes(std::vector<float>(32, 1.0f)));
    CHECK_THAT(err(b), Catch::Contains("tensor 'blocks.2.att.ln_x.weight' has shape [32], expected [64]"));
    auto c = rebuilt(good, "blk.1.time_mix_key.weight");  // Q8_0 [64, 64] as [32, 64]
    c.add_tensor("blk.1.time_mix_key.weight", {64, 32}, 8, std::string(32 * 2 * 34, '\0'));
    CHECK_THAT(err(c), Catch::Contains("tensor 'blocks.1.att.key.weight' has shape [32, 64], expected [64, 64]"));
}

TEST_CASE("Model::memory() accounts for every byte a loaded GGUF keeps: in place, copied, vectors",
          "[quantize][memory]") {
    RWKV_REQUIRE_FIXTURES();
    test_support::temp_dir dir("rwkv-quantize-mem");
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    rwkv::QuantizeOptions o;
    o.type = "q8_0";
    struct sums {
        std::size_t matrices = 0, rescaled = 0, vectors = 0, file = 0;
    };
    auto sums_of = [](const std::filesystem::path& p, int L) {
        sums s;
        s.file = std::filesystem::file_size(p);
        for (const auto& t : rwkv::io::read_gguf(p).tensors) {
            if (t.type == rwkv::dtype::f32) {
                s.vectors += t.data.size();
                continue;
            }
            s.matrices += t.data.size();
            for (int l = 6; l < L; ++l)  // stored divided by 2^(l div 6): copied when multiplied back
                for (const char* n : {".time_mix_output.weight", ".channel_mix_value.weight"})
                    if (t.name == "blk." + std::to_string(l) + n) s.rescaled += t.data.size();
        }
        return s;
    };
    SECTION("x052, 12 layers: the rescaled half of the value/output matrices is copied, the rest in place") {
        const auto p = dir.path / "t5.gguf";
        rwkv::write_gguf(rwkv::io::open(fixture_dir + "/tiny/tiny-rwkv-5v2-730K.pth"), p, o);
        const auto s = sums_of(p, 12);
        REQUIRE(s.rescaled > 0);
        const auto m = rwkv::Model<rwkv::stored>::load(p);
        const auto& u = m.memory();
        CHECK(u.in_place == s.matrices - s.rescaled);
        CHECK(u.copied == s.rescaled);
        // Every F32 vector once, except the decay d, kept as exp(-exp(d)) and -exp(d): A more per layer.
        CHECK(u.vectors == s.vectors + 12 * 64 * sizeof(float));
        CHECK(u.released > 0);
        CHECK(u.released <= s.file - u.in_place + page);
    }
    SECTION("x060: the LoRA matrices are transposed copies (F32), every Q8_0 matrix in place") {
        const auto p = dir.path / "t6.gguf";
        rwkv::write_gguf(rwkv::io::open(rand_pth), p, o);
        const auto s = sums_of(p, 2);
        const auto m = rwkv::Model<rwkv::stored>::load(p);
        const auto& u = m.memory();
        const auto& c = m.config();
        const std::size_t lora = static_cast<std::size_t>(c.n_layer) *
                                 (2 * 5 * c.dim_lora_mix * c.n_embd + c.dim_lora_decay * (c.n_embd + c.dim_att)) *
                                 sizeof(float);
        CHECK(u.in_place == s.matrices);
        CHECK(u.copied == lora);
        CHECK(u.vectors == s.vectors - lora);  // the file's F32 tensors are the vectors and the LoRAs
        CHECK(u.released <= s.file - u.in_place + page);
    }
}
