// Model<T>: golden logits, states and greedy continuations of every fixture model, in both
// forward modes, for float / bfloat16 / half weights; and the model-level error cases.

#include <rwkv/model.hpp>

#include <unistd.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <thread>

#include "errors.hpp"
#include "model_fixtures.hpp"
#include "temp_files.hpp"

using namespace model_fixtures;
using test_support::error_of;
using test_support::temp_dir;

namespace {

constexpr float logit_tol = 1e-4f;

template <class T>
const char* policy_name() {
    if constexpr (std::is_same_v<T, rwkv::stored>) return "stored";
    else return rwkv::scalar_name<T>();
}

template <class T>
void check_case(const Case& k, float tol) {
    INFO("model " << k.name << " as Model<" << policy_name<T>() << ">");
    auto model = rwkv::Model<T>::load(k.model);
    const auto& c = model.config();
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    const auto V = static_cast<std::size_t>(c.vocab_size);
    REQUIRE(gold.size() == toks.size() * V);

    // One token at a time.
    auto st = model.new_state();
    float step = 0.0f;
    for (std::size_t t = 0; t < toks.size(); ++t) {
        auto logits = model.forward(toks[t], st);
        REQUIRE(logits.size() == V);
        step = std::max(step, max_abs_diff(logits.data(), gold.data() + t * V, V));
    }
    // The whole span: every row, and the last-row form.
    auto st2 = model.new_state();
    std::vector<float> all(toks.size() * V);
    model.forward_all(toks, st2, all);
    const float span_all = max_abs_diff(all.data(), gold.data(), all.size());
    auto st3 = model.new_state();
    auto last = model.forward(std::span<const rwkv::token>(toks), st3);
    const float span_last = max_abs_diff(last.data(), gold.data() + (toks.size() - 1) * V, V);
    // Split calls (13 + rest) carry the state exactly like one call.
    auto st4 = model.new_state();
    model.forward(std::span<const rwkv::token>(toks).first(13), st4);
    auto split = model.forward(std::span<const rwkv::token>(toks).subspan(13), st4);
    const float span_split = max_abs_diff(split.data(), gold.data() + (toks.size() - 1) * V, V);

    float state_rel = 0.0f, state_modes = 0.0f;
    if (k.compare_state) {
        const auto gs = fixtures::read_f32(k.state);
        REQUIRE(gs.size() == st.data().size());
        state_rel = max_rel_diff(st.data().data(), gs.data(), gs.size());
        CHECK(state_rel <= 1e-4f);
    }
    state_modes = max_rel_diff(st3.data().data(), st.data().data(), st.data().size());
    CHECK(state_modes <= 1e-4f);

    std::printf("%-36s %-9s step %.2e  span(all rows) %.2e  span(last) %.2e  split %.2e  state %.2e\n", k.name.c_str(),
                policy_name<T>(), step, span_all, span_last, span_split, state_rel);
    CHECK(step <= tol);
    CHECK(span_all <= tol);
    CHECK(span_last <= tol);
    CHECK(span_split <= tol);

    if (!k.greedy_logits.empty()) {
        const auto m = fixtures::read_json(k.manifest);
        const auto want = m["greedy"]["ids"].ints<rwkv::token>();
        const auto gl = fixtures::read_f32(k.greedy_logits);
        // Continue from the token-by-token state and, separately, from the span state.
        for (auto* s : {&st, &st3}) {
            rwkv::token next = argmax(s == &st ? std::span<const float>(gold.data() + (toks.size() - 1) * V, V)
                                               : std::span<const float>(last));
            std::vector<rwkv::token> got;
            float g = 0.0f;
            for (std::size_t i = 0; i < want.size(); ++i) {
                got.push_back(next);
                auto lg = model.forward(next, *s);
                g = std::max(g, max_abs_diff(lg.data(), gl.data() + i * V, V));
                next = argmax(lg);
            }
            CHECK(got == want);
            CHECK(g <= tol);
        }
    }
}

}  // namespace

TEST_CASE("fp32 models reproduce the golden logits, states and greedy text", "[model][golden]") {
    RWKV_REQUIRE_FIXTURES();
    for (const auto& k : cases()) check_case<float>(k, logit_tol);
}

TEST_CASE("bf16 and fp16 weights kept in their own type match the upcast goldens", "[model][golden]") {
    RWKV_REQUIRE_FIXTURES();
    for (const auto& k : cases()) {
        if (k.name.find(".bf16") != std::string::npos) check_case<rwkv::bfloat16>(k, logit_tol);
        if (k.name.find(".fp16") != std::string::npos) check_case<rwkv::half>(k, logit_tol);
    }
}

TEST_CASE("Model<stored> keeps every fixture's tensors as stored, in place, and matches the goldens",
          "[model][golden][stored]") {
    RWKV_REQUIRE_FIXTURES();
    for (const auto& k : cases()) {
        check_case<rwkv::stored>(k, logit_tol);
        auto m = rwkv::Model<rwkv::stored>::load(k.model);
        const auto file_type = rwkv::io::load_pth(k.model).at("head.weight").type;
        std::vector<const rwkv::Weight*> big = {&m.emb(), &m.head()};
        for (const auto& b : m.blocks()) {
            std::visit(
                [&](const auto& att) {
                    for (const auto* w :
                         {&att.core.receptance, &att.core.key, &att.core.value, &att.core.gate, &att.core.output})
                        big.push_back(w);
                },
                b.att);
            for (const auto* w : {&b.ffn.key, &b.ffn.receptance, &b.ffn.value}) big.push_back(w);
        }
        INFO(k.name);
        for (const auto* w : big) {
            CHECK(w->mapped);
            CHECK(w->type == file_type);
        }
        CHECK(m.weight_type() == "stored: " + std::string(rwkv::dtype_name(file_type)));
    }
}

TEST_CASE("fp32 files loaded as bf16 / fp16 weights stay close to the fp32 goldens", "[model][golden]") {
    RWKV_REQUIRE_FIXTURES();
    // Rounding every matrix to 8 (bf16) or 11 (fp16) mantissa bits moves the random models'
    // logits by about 0.1 / 0.01 (fixtures README); these bounds keep that visible.
    const auto k = cases()[3];  // rand-x060-L2-D128-H64-V1000
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    auto run = [&](auto model) {
        auto st = model.new_state();
        float m = 0.0f;
        const auto V = static_cast<std::size_t>(model.config().vocab_size);
        for (std::size_t t = 0; t < toks.size(); ++t) {
            auto lg = model.forward(toks[t], st);
            m = std::max(m, max_abs_diff(lg.data(), gold.data() + t * V, V));
        }
        return m;
    };
    const float bf = run(rwkv::Model<rwkv::bfloat16>::load(k.model));
    const float hf = run(rwkv::Model<rwkv::half>::load(k.model));
    std::printf("rand-x060-L2 fp32 file as bf16 weights: max|d| %.3g, as fp16 weights: %.3g\n", bf, hf);
    CHECK(bf < 0.25f);
    CHECK(hf < 0.03f);
}

TEST_CASE("config is read from tensor shapes", "[model]") {
    RWKV_REQUIRE_FIXTURES();
    auto m5 = rwkv::Model<float>::load(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
    CHECK(m5.config().version == rwkv::Version::x052);
    CHECK(m5.config().n_layer == 12);
    CHECK(m5.config().n_embd == 64);
    CHECK(m5.config().n_head == 8);
    CHECK(m5.config().head_size == 8);
    CHECK(m5.config().dim_ffn == 256);
    CHECK(m5.config().vocab_size == 256);
    auto m6 = rwkv::Model<float>::load(fixtures::dir() / "random" / "rand-x060-L3-D256-H64-V4099.pth");
    CHECK(m6.config().version == rwkv::Version::x060);
    CHECK(m6.config().n_layer == 3);
    CHECK(m6.config().n_head == 4);
    CHECK(m6.config().head_size == 64);
    CHECK(m6.config().dim_ffn == 320);
    CHECK(m6.config().vocab_size == 4099);
    CHECK(m6.config().dim_lora_mix == 32);
    CHECK(m6.config().dim_lora_decay == 64);
}

TEST_CASE("weights whose file dtype equals T are used in place", "[model]") {
    RWKV_REQUIRE_FIXTURES();
    auto m = rwkv::Model<rwkv::bfloat16>::load(fixtures::dir() / "random" / "rand-x060-L2-D128-H64-V1000.bf16.pth");
    for (const auto& b : m.blocks()) {
        CHECK(b.ffn.key.mapped);
        CHECK(b.ffn.value.mapped);
    }
    auto f = rwkv::Model<float>::load(fixtures::dir() / "random" / "rand-x060-L2-D128-H64-V1000.bf16.pth");
    CHECK_FALSE(f.blocks()[0].ffn.key.mapped);
}

TEST_CASE("memory(): matrices used in place or copied, and the file pages nothing reads released", "[model][memory]") {
    RWKV_REQUIRE_FIXTURES();
    const auto path = fixtures::dir() / "random" / "rand-x052-L2-D128-H64-V1000.pth";
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t file = std::filesystem::file_size(path);
    const rwkv::Config c = rwkv::Model<float>::load(path).config();
    std::size_t values = 0, q8 = 0;  // every big matrix: fp32 values, Q8_0 bytes
    for (const auto& t : rwkv::official_tensors(c))
        if (t.matrix) {
            values += static_cast<std::size_t>(t.shape[0] * t.shape[1]);
            q8 += static_cast<std::size_t>(t.shape[0] * t.shape[1] / 32 * 34);
        }
    const auto f = rwkv::Model<float>::load(path);  // the file is fp32: every matrix in place
    CHECK(f.memory().in_place == values * sizeof(float));
    CHECK(f.memory().copied == 0);
    CHECK(f.memory().released <= file - f.memory().in_place + page);
    const auto q = rwkv::Model<rwkv::q8_0>::load(path);  // quantized on load: nothing of the file is kept
    CHECK(q.memory().in_place == 0);
    CHECK(q.memory().copied == q8);
    CHECK(q.memory().released == (file + page - 1) / page * page);
    CHECK(q.memory().vectors == f.memory().vectors);
    CHECK(q.memory().vectors > 0);
}

namespace {

// Resident bytes of this process's mappings of `path` (/proc/self/smaps); -1 where unknown.
long long mapping_rss(const std::filesystem::path& path) {
    std::ifstream f("/proc/self/smaps");
    if (!f) return -1;
    const std::string want = std::filesystem::canonical(path).string();
    long long total = -1;
    bool ours = false;
    for (std::string line; std::getline(f, line);) {
        if (line.find(':') > line.find(' ')) {  // a mapping's header: "lo-hi perms offset dev inode path"
            ours = line.size() >= want.size() && line.compare(line.size() - want.size(), want.size(), want) == 0;
        } else if (ours && line.rfind("Rss:", 0) == 0) {
            total = std::max(total, 0LL) + std::stoll(line.substr(4)) * 1024;
        }
    }
    return total;
}

// The big matrices of a model, with their official names.
template <class T>
std::vector<std::pair<std::string, const rwkv::Weight*>> big_matrices(const rwkv::Model<T>& m) {
    std::vector<std::pair<std::string, const rwkv::Weight*>> out{{"emb.weight", &m.emb()}, {"head.weight", &m.head()}};
    for (std::size_t l = 0; l < m.blocks().size(); ++l) {
        const auto& b = m.blocks()[l];
        const std::string p = "blocks." + std::to_string(l) + ".";
        std::visit(
            [&](const auto& att) {
                out.emplace_back(p + "att.receptance.weight", &att.core.receptance);
                out.emplace_back(p + "att.key.weight", &att.core.key);
                out.emplace_back(p + "att.value.weight", &att.core.value);
                out.emplace_back(p + "att.gate.weight", &att.core.gate);
                out.emplace_back(p + "att.output.weight", &att.core.output);
            },
            b.att);
        out.emplace_back(p + "ffn.key.weight", &b.ffn.key);
        out.emplace_back(p + "ffn.receptance.weight", &b.ffn.receptance);
        out.emplace_back(p + "ffn.value.weight", &b.ffn.value);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "quantize on load: bytes as encoding each whole decoded tensor, LoRA matrices copied in the file's 16-bit type",
    "[model][memory]") {
    RWKV_REQUIRE_FIXTURES();
    const auto path = fixtures::dir() / "random" / "rand-x060-L2-D128-H64-V1000.bf16.pth";
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const auto q = rwkv::Model<rwkv::q4_0>::load(path);
    const auto file = rwkv::io::open(path);
    std::size_t q4 = 0;
    for (const auto& [name, w] : big_matrices(q)) {
        INFO(name);
        // The loader converts row by row into the weight's buffer; the reference decodes the whole
        // tensor to fp32 and encodes that (what the loader did before): the same bytes.
        const auto& t = file.at(name);
        std::vector<float> values(static_cast<std::size_t>(t.numel()));
        rwkv::weights::decode_row(t.type, t.data.data(), values.data(), t.numel());
        const auto ref = rwkv::Weight::encode(rwkv::dtype::q4_0, values.data(), w->rows, w->cols);
        REQUIRE(w->type == rwkv::dtype::q4_0);
        REQUIRE(w->bytes() == ref.bytes());
        CHECK(std::memcmp(w->data, ref.data, ref.bytes()) == 0);
        CHECK_FALSE(w->mapped);
        q4 += w->bytes();
    }
    // The x060 LoRA matrices are not quantized under a block-format policy: they keep the file's
    // 16-bit type (this .pth holds bf16), copied (transposed) at 2 bytes a value.
    const auto& c = q.config();
    const std::size_t lora =
        static_cast<std::size_t>(c.n_layer) *
        (2u * c.n_embd * 5 * c.dim_lora_mix + 1u * c.n_embd * c.dim_lora_decay + 1u * c.dim_lora_decay * c.dim_att) *
        2u;
    CHECK(file.at("blocks.0.att.time_maa_w1").type == rwkv::dtype::bf16);
    CHECK(q.memory().in_place == 0);
    CHECK(q.memory().copied == q4 + lora);
    CHECK(q.memory().released == (std::filesystem::file_size(path) + page - 1) / page * page);
}

TEST_CASE("loading converts tensor by tensor: a consumed tensor's file pages leave the process", "[model][memory]") {
    RWKV_REQUIRE_FIXTURES();
    // fp32, 15 MB: the embedding and head (4.2 MB each) and block 0 (3.4 MB) are converted before
    // the first progress call.
    const auto path = fixtures::dir() / "random" / "rand-x052-L3-D256-H64-V4099.pth";
    {  // the measure sees pages: a mapping that reads every byte holds the whole file
        const auto f = rwkv::io::open(path);
        std::uint8_t sum = 0;
        for (const auto& t : f.tensors)
            for (std::byte b : t.data) sum = static_cast<std::uint8_t>(sum + static_cast<std::uint8_t>(b));
        volatile std::uint8_t sink = sum;  // keeps the reads
        (void)sink;
        if (mapping_rss(path) < (12 << 20)) {  // no /proc/self/smaps, or an emulator's (qemu-user)
            WARN("/proc/self/smaps does not show this process's file pages: check skipped");
            return;
        }
    }
    // The bound below assumes 4 KiB pages (a 64 KiB page holds several small tensors and stays).
    if (::sysconf(_SC_PAGESIZE) != 4096) {
        WARN("pages of " << ::sysconf(_SC_PAGESIZE) << " bytes: check skipped");
        return;
    }
    std::vector<long long> rss;
    const auto q = rwkv::Model<rwkv::q8_0>::load(path, [&](int, int) { rss.push_back(mapping_rss(path)); });
    REQUIRE(rss.size() == 3);
    // What stays until the end of loading: pages a tensor shares with its neighbours (small
    // vectors, zip headers) and the pages the kernel maps around each fault (fault-around, 64 KiB
    // windows reaching into tensors already released): about 1 MiB here, where a loader that
    // keeps what it read would hold over 11 MB at the first call and the whole file at the last.
    INFO("file mapping resident after each block: " << rss[0] << ", " << rss[1] << ", " << rss[2] << " bytes");
    for (long long r : rss) CHECK(r < (2 << 20));
    CHECK(mapping_rss(path) <= 0);  // after loading: nothing of the file is used in place
    CHECK(q.memory().in_place == 0);
}

TEST_CASE("loading frees an in-memory tensor's own buffer once it is converted", "[model][memory]") {
    rwkv::Config cfg;
    cfg.version = rwkv::Version::x060;
    cfg.n_layer = 2;
    cfg.n_embd = 128;
    cfg.head_size = 64;
    cfg.vocab_size = 512;
    auto tensors = rwkv::detail::random_tensors<rwkv::bfloat16>(cfg, 7, rwkv::Init::fast);
    std::map<std::string, std::weak_ptr<const void>> owners;
    for (const auto& t : tensors.tensors) owners[t.name] = t.owner;
    std::vector<bool> emb_freed, key1_freed;  // at each progress call (after each block)
    const auto q = rwkv::Model<rwkv::q8_0>::from_tensors(std::move(tensors), [&](int, int) {
        emb_freed.push_back(owners["emb.weight"].expired());
        key1_freed.push_back(owners["blocks.1.att.key.weight"].expired());
    });
    CHECK(emb_freed == std::vector<bool>{true, true});    // converted before block 0
    CHECK(key1_freed == std::vector<bool>{false, true});  // converted in block 1
    for (const auto& [name, o] : owners) {
        INFO(name);
        CHECK(o.expired());  // every tensor was copied (q8_0 matrices, fp32 vectors and LoRA)
    }
    // A caller that keeps its tensors (from_tensors takes a copy) keeps their buffers, and gets
    // the same weights.
    const auto kept = rwkv::detail::random_tensors<rwkv::bfloat16>(cfg, 7, rwkv::Init::fast);
    const auto again = rwkv::Model<rwkv::q8_0>::from_tensors(kept);
    for (const auto& t : kept.tensors) CHECK((t.owner && !t.data.empty()));
    const auto a = big_matrices(q), b = big_matrices(again);
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        REQUIRE(a[i].second->bytes() == b[i].second->bytes());
        CHECK(std::memcmp(a[i].second->data, b[i].second->data, a[i].second->bytes()) == 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input at the model level. Tensor sets are edited in memory (file-level corruption is
// covered by the io tests and by the truncation test below).

namespace {

rwkv::io::tensor_file tiny6() { return rwkv::io::load_pth(fixtures::dir() / "tiny" / "tiny-rwkv-6v0-1m.pth"); }

void erase(rwkv::io::tensor_file& f, const std::string& name) {
    std::erase_if(f.tensors, [&](const auto& t) { return t.name == name; });
}

void rename(rwkv::io::tensor_file& f, const std::string& from, const std::string& to) {
    for (auto& t : f.tensors)
        if (t.name == from) t.name = to;
}

}  // namespace

TEST_CASE("missing, unknown, misshapen and mistyped tensors are named", "[model][errors]") {
    RWKV_REQUIRE_FIXTURES();
    using M = rwkv::Model<float>;
    {
        auto f = tiny6();
        erase(f, "blocks.3.ffn.value.weight");
        auto msg = error_of([&] { M::from_tensors(f); });
        CHECK_THAT(msg, Catch::Contains("tiny-rwkv-6v0-1m.pth") && Catch::Contains("blocks.3.ffn.value.weight"));
    }
    {
        auto f = tiny6();
        auto extra = f.tensors.front();
        extra.name = "blocks.2.att.mystery";
        f.tensors.push_back(extra);
        auto msg = error_of([&] { M::from_tensors(f); });
        CHECK_THAT(msg, Catch::Contains("unknown tensor") && Catch::Contains("blocks.2.att.mystery"));
    }
    {
        auto f = tiny6();
        for (auto& t : f.tensors)
            if (t.name == "blocks.5.att.key.weight") {
                t.shape = {32, 128};  // same byte count, wrong shape
            }
        auto msg = error_of([&] { M::from_tensors(f); });
        CHECK_THAT(msg, Catch::Contains("blocks.5.att.key.weight") && Catch::Contains("[32, 128]") &&
                            Catch::Contains("expected [64, 64]"));
    }
    {
        auto f = tiny6();
        for (auto& t : f.tensors)
            if (t.name == "blocks.1.ln1.weight") t.type = rwkv::io::dtype::i32;
        auto msg = error_of([&] { M::from_tensors(f); });
        CHECK_THAT(
            msg, Catch::Contains("blocks.1.ln1.weight") && Catch::Contains("I32") && Catch::Contains("supported: F32"));
    }
}

TEST_CASE("other RWKV generations are refused by name", "[model][errors]") {
    RWKV_REQUIRE_FIXTURES();
    using M = rwkv::Model<float>;
    {  // RWKV-4: no ln_x, no time_maa
        auto f = rwkv::io::load_pth(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
        for (auto& t : f.tensors)
            if (t.name.find("ln_x") != std::string::npos) t.name.replace(t.name.find("ln_x"), 4, "ln_q");
        CHECK_THAT(error_of([&] { M::from_tensors(f); }), Catch::Contains("RWKV-4"));
    }
    {  // 5.0 preview: no gate
        auto f = rwkv::io::load_pth(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
        for (auto& t : f.tensors)
            if (t.name.find("gate.weight") != std::string::npos) t.name.replace(t.name.find("gate"), 4, "gata");
        CHECK_THAT(error_of([&] { M::from_tensors(f); }), Catch::Contains("5.0"));
    }
    {  // RWKV-7
        auto f = tiny6();
        rename(f, "blocks.0.att.time_maa_x", "blocks.0.att.x_r");
        CHECK_THAT(error_of([&] { M::from_tensors(f); }), Catch::Contains("RWKV-7"));
    }
    {  // ChatRWKV-converted
        auto f = tiny6();
        f.other_keys.push_back("_strategy");
        CHECK_THAT(error_of([&] { M::from_tensors(f); }), Catch::Contains("converted by ChatRWKV"));
    }
}

TEST_CASE("token ids out of range and foreign states are rejected without touching the state", "[model][errors]") {
    RWKV_REQUIRE_FIXTURES();
    auto m = rwkv::Model<float>::load(fixtures::dir() / "tiny" / "tiny-rwkv-6v0-1m.pth");
    auto st = m.new_state();
    m.forward(rwkv::token{65}, st);
    const auto before = std::vector<float>(st.data().begin(), st.data().end());
    CHECK_THAT(error_of([&] { m.forward(rwkv::token{256}, st); }),
               Catch::Contains("token id 256") && Catch::Contains("vocab_size 256"));
    const std::vector<rwkv::token> bad{1, 2, -1};
    CHECK_THAT(error_of([&] { m.forward(std::span<const rwkv::token>(bad), st); }), Catch::Contains("token id -1"));
    CHECK(std::vector<float>(st.data().begin(), st.data().end()) == before);
    CHECK_THAT(error_of([&] { m.forward(std::span<const rwkv::token>(), st); }), Catch::Contains("empty"));

    auto other = rwkv::Model<float>::load(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
    auto foreign = other.new_state();
    CHECK_THAT(error_of([&] { m.forward(rwkv::token{1}, foreign); }), Catch::Contains("another shape"));
}

TEST_CASE("truncated checkpoints throw rwkv::error at every cut", "[model][errors]") {
    RWKV_REQUIRE_FIXTURES();
    const auto src = fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth";
    const auto bytes = fixtures::read_text(src);
    const temp_dir dir("rwkv-test-trunc");
    const auto tmp = dir.path / "truncated.pth";
    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{30}, std::size_t{200}, bytes.size() / 3,
                            bytes.size() / 2, bytes.size() - 100, bytes.size() - 22, bytes.size() - 1}) {
        {
            std::ofstream out(tmp, std::ios::binary);
            out.write(bytes.data(), static_cast<std::streamsize>(cut));
        }
        INFO("cut at " << cut);
        CHECK_THAT(error_of([&] { rwkv::Model<float>::load(tmp); }), Catch::Contains(tmp.filename().string()));
    }
    CHECK_THAT(error_of([&] { rwkv::Model<float>::load("/nonexistent/model.pth"); }),
               Catch::Contains("/nonexistent/model.pth"));
}

TEST_CASE("the chunked WKV prefill matches the goldens too", "[model][golden]") {
    RWKV_REQUIRE_FIXTURES();
    for (const auto& k : cases()) {
        if (k.name.find(".bf16") != std::string::npos || k.name.find(".fp16") != std::string::npos) continue;
        auto model = rwkv::Model<float>::load(k.model);
        model.set_chunked_wkv(true);
        const auto toks = tokens(k);
        const auto gold = fixtures::read_f32(k.logits);
        const auto V = static_cast<std::size_t>(model.config().vocab_size);
        auto st = model.new_state();
        std::vector<float> all(toks.size() * V);
        model.forward_all(toks, st, all);
        const float d = max_abs_diff(all.data(), gold.data(), all.size());
        float sd = 0.0f;
        if (k.compare_state) {
            const auto gs = fixtures::read_f32(k.state);
            sd = max_rel_diff(st.data().data(), gs.data(), gs.size());
        }
        std::printf("%-36s chunked WKV: logits %.2e  state %.2e\n", k.name.c_str(), d, sd);
        CHECK(d <= logit_tol);
        CHECK(sd <= 1e-4f);
    }
}

TEST_CASE("1, 2 and 3 threads give the same logits", "[model][threads]") {
    RWKV_REQUIRE_FIXTURES();
    const auto k = cases()[5];  // rand-x060-L3-D256-H64-V4099
    const auto toks = tokens(k);
    std::vector<std::vector<float>> step_out, span_out;
    for (int threads : {1, 2, 3}) {
        auto model = rwkv::Model<rwkv::bfloat16>::load(k.model);
        model.set_threads(threads);
        CHECK(model.threads() == threads);
        auto s = model.new_state();
        std::vector<float> got;
        for (auto t : toks) {
            auto lg = model.forward(t, s);
            got.insert(got.end(), lg.begin(), lg.end());
        }
        step_out.push_back(got);
        auto s2 = model.new_state();
        auto lg = model.forward(std::span<const rwkv::token>(toks), s2);
        span_out.emplace_back(lg.begin(), lg.end());
    }
    for (std::size_t i = 1; i < step_out.size(); ++i) {
        CHECK(max_abs_diff(step_out[i].data(), step_out[0].data(), step_out[0].size()) <= 1e-5f);
        CHECK(max_abs_diff(span_out[i].data(), span_out[0].data(), span_out[0].size()) <= 1e-5f);
    }
    auto m = rwkv::Model<float>::load(k.model);
    CHECK_THROWS_WITH(m.set_threads(0), Catch::Contains("at least 1"));
}

TEST_CASE("concurrent forwards on one model with separate states", "[model][threads]") {
    RWKV_REQUIRE_FIXTURES();
    const auto k = cases()[1];  // tiny x060
    const auto model = rwkv::Model<float>::load(k.model);
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    const auto V = static_cast<std::size_t>(model.config().vocab_size);
    std::vector<float> worst(4, 0.0f);
    std::vector<std::thread> pool;
    for (int i = 0; i < 4; ++i)
        pool.emplace_back([&, i] {
            auto s = model.new_state();
            for (std::size_t t = 0; t < toks.size(); ++t) {
                auto lg = model.forward(toks[t], s);
                worst[static_cast<std::size_t>(i)] =
                    std::max(worst[static_cast<std::size_t>(i)], max_abs_diff(lg.data(), gold.data() + t * V, V));
            }
        });
    for (auto& t : pool) t.join();
    for (float w : worst) CHECK(w <= logit_tol);
}

// ---- the decode loop allocates nothing -----------------------------------------------------
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
std::atomic<long> g_bytes{0};
}  // namespace

// noinline keeps GCC from inlining free() into callers and then warning that it does not
// match the replaced operator new. The array and nothrow forms forward here.
[[gnu::noinline]] void* operator new(std::size_t n) {
    if (g_counting.load(std::memory_order_relaxed)) {
        g_allocations.fetch_add(1, std::memory_order_relaxed);
        g_bytes.fetch_add(static_cast<long>(n), std::memory_order_relaxed);
    }
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) { return ::operator new(n); }
[[gnu::noinline]] void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    try {
        return ::operator new(n);
    } catch (...) {
        return nullptr;
    }
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

rwkv::Config batch_config(rwkv::Version v) {
    rwkv::Config c;
    c.version = v;
    c.n_layer = 2;
    c.n_embd = 64;
    c.head_size = 16;
    c.vocab_size = 300;
    c.dim_lora_mix = 8;
    c.dim_lora_decay = 16;
    return c;
}

// A model whose layers do something (the official init zeroes output matrices): a fixture when
// present, else a random model run through a few tokens is still the identity, so use the
// fixture's tiny models for the numbers and random ones for the API.
std::vector<rwkv::token> prompt(std::size_t n, int vocab, int seed) {
    std::vector<rwkv::token> t(n);
    for (std::size_t i = 0; i < n; ++i)
        t[i] = static_cast<rwkv::token>((i * 31 + static_cast<std::size_t>(seed) * 7 + 1) %
                                        static_cast<std::size_t>(vocab));
    return t;
}

// Floats of a and b whose bits differ.
std::size_t bit_differences(const float* a, const float* b, std::size_t n) {
    std::size_t d = 0;
    for (std::size_t i = 0; i < n; ++i) d += std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]);
    return d;
}

template <class M>
void check_batched_decode(const M& model, int B, int steps) {
    const auto V = static_cast<std::size_t>(model.config().vocab_size);
    const int vocab = model.config().vocab_size;
    // States at different positions (prompts of different lengths), batched vs single.
    std::vector<rwkv::State> batched, single;
    for (int b = 0; b < B; ++b) {
        auto s = model.new_state();
        model.forward(prompt(static_cast<std::size_t>(1 + b % 7 * 3), vocab, b), s);
        batched.push_back(s);
        single.push_back(s);
    }
    std::vector<rwkv::State*> ptrs;
    for (auto& s : batched) ptrs.push_back(&s);
    std::vector<rwkv::token> toks(static_cast<std::size_t>(B));
    for (int b = 0; b < B; ++b) toks[static_cast<std::size_t>(b)] = static_cast<rwkv::token>((b * 13 + 5) % vocab);
    std::size_t logit_diffs = 0, state_diffs = 0;
    float worst = 0.0f;
    for (int step = 0; step < steps; ++step) {
        auto rows = model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::State* const>(ptrs));
        REQUIRE(rows.size() == static_cast<std::size_t>(B) * V);
        std::vector<float> got(rows.begin(), rows.end());
        for (int b = 0; b < B; ++b) {
            auto want = model.forward(toks[static_cast<std::size_t>(b)], single[static_cast<std::size_t>(b)]);
            const float* row = got.data() + static_cast<std::size_t>(b) * V;
            logit_diffs += bit_differences(row, want.data(), V);
            worst = std::max(worst, max_rel_diff(row, want.data(), V));
            toks[static_cast<std::size_t>(b)] = argmax(want);
        }
    }
    for (int b = 0; b < B; ++b) {
        const auto& want = single[static_cast<std::size_t>(b)].data();
        state_diffs += bit_differences(batched[static_cast<std::size_t>(b)].data().data(), want.data(), want.size());
    }
    INFO("B " << B << ", " << model.threads() << " thread(s), " << model.weight_type() << ": " << logit_diffs
              << " logits and " << state_diffs << " state values differ from single forwards (worst relative " << worst
              << ")");
    // Bit for bit: every projection of a decode batch runs the single mat-vec's arithmetic per
    // row (backend/cpu/matvec.hpp), everything else is per row or per sequence.
    CHECK(logit_diffs == 0);
    CHECK(state_diffs == 0);
}

// B = 1, 2, 5, 16, 64 sequences at mixed positions on 1 and 2 threads.
template <class M>
void check_batched_decode_all(M& model, int steps) {
    for (int threads : {1, 2}) {
        model.set_threads(threads);
        for (int B : {1, 2, 5, 16, 64}) check_batched_decode(model, B, steps);
    }
}

}  // namespace

TEST_CASE("forward_batch decodes B sequences bit for bit like B single forwards", "[model][batch]") {
    RWKV_REQUIRE_FIXTURES();
    for (const char* name : {"tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-1m"}) {
        INFO(name);
        auto model = rwkv::Model<float>::load(fixtures::dir() / "tiny" / (std::string(name) + ".pth"));
        check_batched_decode_all(model, 3);
        model.set_chunked_wkv(true);  // prefill only: decoding is unchanged
        check_batched_decode(model, 3, 2);
    }
}

TEST_CASE("forward_batch is bit for bit single forwards for every weight type", "[model][batch][all-types]") {
    RWKV_REQUIRE_FIXTURES();
    const auto random = fixtures::dir() / "random";
    for (const char* name : {"rand-x052-L3-D256-H64-V4099", "rand-x060-L3-D256-H64-V4099"}) {
        INFO(name);
        const auto file = random / (std::string(name) + ".pth");
        auto bf = rwkv::Model<rwkv::bfloat16>::load(file);
        check_batched_decode_all(bf, 2);
        auto hf = rwkv::Model<rwkv::half>::load(file);
        check_batched_decode_all(hf, 2);
        auto q8 = rwkv::Model<rwkv::q8_0>::load(file);  // block formats: the quantized mat-vec per row
        check_batched_decode_all(q8, 2);
        auto q51 = rwkv::Model<rwkv::q5_1>::load(file);  // (K formats need 256-column rows: not these shapes)
        check_batched_decode_all(q51, 2);
        auto iq4 = rwkv::Model<rwkv::iq4_nl>::load(file);
        check_batched_decode_all(iq4, 2);
    }
    for (const char* name : {"rand-x060-L2-D128-H64-V1000.bf16", "rand-x060-L2-D128-H64-V1000.fp16"}) {
        INFO(name);  // 16-bit files kept as stored (LoRA matrices in the file's type too)
        auto m = rwkv::Model<rwkv::stored>::load(random / (std::string(name) + ".pth"));
        check_batched_decode_all(m, 2);
    }
}

TEST_CASE("batched prefill of prompts of different lengths equals one prefill each", "[model][batch]") {
    RWKV_REQUIRE_FIXTURES();
    for (const char* name : {"tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-1m"}) {
        INFO(name);
        auto model = rwkv::Model<float>::load(fixtures::dir() / "tiny" / (std::string(name) + ".pth"));
        const auto V = static_cast<std::size_t>(model.config().vocab_size);
        // Lengths that straddle the 128-row rounds.
        const std::vector<std::size_t> lens = {1, 40, 127, 300, 2, 129};
        std::vector<std::vector<rwkv::token>> prompts;
        std::vector<std::span<const rwkv::token>> views;
        std::vector<rwkv::State> states, singles;
        std::vector<rwkv::State*> ptrs;
        for (std::size_t b = 0; b < lens.size(); ++b) prompts.push_back(prompt(lens[b], 256, static_cast<int>(b)));
        for (std::size_t b = 0; b < lens.size(); ++b) {
            views.emplace_back(prompts[b]);
            states.push_back(model.new_state());
            singles.push_back(model.new_state());
        }
        for (auto& s : states) ptrs.push_back(&s);
        auto rows = model.forward_batch(std::span<const std::span<const rwkv::token>>(views),
                                        std::span<rwkv::State* const>(ptrs));
        std::vector<float> got(rows.begin(), rows.end());
        for (std::size_t b = 0; b < lens.size(); ++b) {
            auto want = model.forward(views[b], singles[b]);
            CHECK(max_abs_diff(got.data() + b * V, want.data(), V) <= 1e-5f);
            CHECK(max_rel_diff(states[b].data().data(), singles[b].data().data(), singles[b].data().size()) <= 1e-5f);
        }
    }
}

TEST_CASE("forward_batch checks its arguments before touching any state", "[model][batch][errors]") {
    auto model = rwkv::Model<float>::random(batch_config(rwkv::Version::x060), 1, rwkv::Init::fast);
    auto a = model.new_state(), b = model.new_state();
    const auto before = std::vector<float>(a.data().begin(), a.data().end());
    std::vector<rwkv::State*> two = {&a, &b}, same = {&a, &a}, null = {&a, nullptr};
    const std::vector<rwkv::token> ok = {1, 2}, bad = {1, 300};
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(bad), two); }),
               Catch::Contains("token id 300") && Catch::Contains("sequence 1"));
    const std::vector<rwkv::token> bad0 = {-1, 2};  // the first sequence is named too
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(bad0), two); }),
               Catch::Contains("token id -1 at position 0 of sequence 0"));
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(ok), same); }),
               Catch::Contains("share one state"));
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(ok), null); }),
               Catch::Contains("state 1 is null"));
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(ok).first(1), two); }),
               Catch::Contains("1 tokens for 2 states"));
    auto other = rwkv::Model<float>::random(batch_config(rwkv::Version::x052), 1, rwkv::Init::fast).new_state();
    std::vector<rwkv::State*> foreign = {&a, &other};
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const rwkv::token>(ok), foreign); }),
               Catch::Contains("another shape"));
    const std::vector<rwkv::token> empty;
    std::vector<std::span<const rwkv::token>> prompts = {std::span<const rwkv::token>(ok),
                                                         std::span<const rwkv::token>(empty)};
    CHECK_THAT(error_of([&] { model.forward_batch(std::span<const std::span<const rwkv::token>>(prompts), two); }),
               Catch::Contains("prompt 1 is empty"));
    CHECK(std::equal(before.begin(), before.end(), a.data().begin()));
}

TEST_CASE("copying a state copies only the recurrent state", "[model][state][alloc]") {
    // Finch-like shape with a 128-token prefill, so the scratch is as large as it gets.
    rwkv::Config c;
    c.n_layer = 2;
    c.n_embd = 256;
    c.head_size = 64;
    c.vocab_size = 1000;
    auto model = rwkv::Model<float>::random(c, 3, rwkv::Init::fast);
    auto s = model.new_state();
    std::vector<rwkv::token> toks(200);
    for (std::size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<rwkv::token>(i * 7 % 1000);
    model.forward(toks, s);
    g_bytes = 0;
    g_allocations = 0;
    g_counting = true;
    rwkv::State copy = s;
    g_counting = false;
    CHECK(g_allocations.load() == 1);
    CHECK(static_cast<std::size_t>(g_bytes.load()) == s.bytes());
    CHECK(s.bytes() == 4u * 2u * (2u * 256u + 4u * 64u * 64u));
    // The copy is a full fork: it continues exactly like the original.
    auto a = model.forward(rwkv::token{5}, s);
    std::vector<float> la(a.begin(), a.end());
    auto b = model.forward(rwkv::token{5}, copy);
    CHECK(std::equal(la.begin(), la.end(), b.begin()));
}

TEST_CASE("decoding allocates nothing after the first token", "[model][alloc]") {
    RWKV_REQUIRE_FIXTURES();
    for (const char* name : {"tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-1m"}) {
        auto model = rwkv::Model<float>::load(fixtures::dir() / "tiny" / (std::string(name) + ".pth"));
        auto s = model.new_state();
        model.forward(rwkv::token{65}, s);
        g_allocations = 0;
        g_counting = true;
        rwkv::token t = 66;
        for (int i = 0; i < 50; ++i) {
            auto lg = model.forward(t, s);
            t = argmax(lg);
        }
        g_counting = false;
        INFO(name);
        CHECK(g_allocations.load() == 0);
    }
}

TEST_CASE("batched decoding allocates nothing after the first call at a given B", "[model][batch][alloc]") {
    auto model = rwkv::Model<float>::random(batch_config(rwkv::Version::x060), 2, rwkv::Init::fast);
    std::vector<rwkv::State> states;
    for (int b = 0; b < 8; ++b) states.push_back(model.new_state());
    std::vector<rwkv::State*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<rwkv::token> toks = {1, 2, 3, 4, 5, 6, 7, 8};
    model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::State* const>(ptrs));
    g_allocations = 0;
    g_counting = true;
    for (int i = 0; i < 10; ++i)
        model.forward_batch(std::span<const rwkv::token>(toks), std::span<rwkv::State* const>(ptrs));
    g_counting = false;
    CHECK(g_allocations.load() == 0);
}

TEST_CASE("opt-in bf16 prefill stays close to the goldens and leaves decoding exact", "[model][bf16]") {
    RWKV_REQUIRE_FIXTURES();
    const auto k = cases()[6];  // rand-x060-L2-D128-H64-V1000.bf16 vs its upcast goldens
    auto model = rwkv::Model<rwkv::bfloat16>::load(k.model);
    model.set_bf16_prefill(true);
    CHECK(model.bf16_prefill());
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    const auto V = static_cast<std::size_t>(model.config().vocab_size);
    auto s = model.new_state();
    std::vector<float> all(toks.size() * V);
    model.forward_all(toks, s, all);
    const float d = max_abs_diff(all.data(), gold.data(), all.size());
    auto s1 = model.new_state();
    float step = 0.0f;
    for (std::size_t t = 0; t < toks.size(); ++t) {
        auto lg = model.forward(toks[t], s1);
        step = std::max(step, max_abs_diff(lg.data(), gold.data() + t * V, V));
    }
    std::printf("bf16 prefill (activations rounded to bf16): span max|d| %.3g; one token at a time %.2e\n", d, step);
    CHECK(d < 0.15f);          // bf16 rounding of activations, logits of std ~1.5
    CHECK(step <= logit_tol);  // decode never uses the bf16 path
}

TEST_CASE("opt-in bf16 activations: decoding stays close to exact and batches are bit for bit single forwards",
          "[model][bf16][batch]") {
    RWKV_REQUIRE_FIXTURES();
    const auto k = cases()[6];  // rand-x060-L2-D128-H64-V1000.bf16 vs its upcast goldens
    auto model = rwkv::Model<rwkv::bfloat16>::load(k.model);
    CHECK_FALSE(model.bf16_activations());  // off by default
    model.set_bf16_activations(true);
    CHECK(model.bf16_activations());
    CHECK(model.bf16_prefill());  // covers prefill too
    const auto toks = tokens(k);
    const auto gold = fixtures::read_f32(k.logits);
    const auto V = static_cast<std::size_t>(model.config().vocab_size);
    auto exact = rwkv::Model<rwkv::bfloat16>::load(k.model);
    auto s = model.new_state(), se = exact.new_state();
    float step = 0.0f, vs_exact = 0.0f;
    std::size_t moved = 0;
    for (std::size_t t = 0; t < toks.size(); ++t) {
        const auto lg = model.forward(toks[t], s);
        const std::vector<float> got(lg.begin(), lg.end());
        const auto le = exact.forward(toks[t], se);
        step = std::max(step, max_abs_diff(got.data(), gold.data() + t * V, V));
        vs_exact = std::max(vs_exact, max_abs_diff(got.data(), le.data(), V));
        moved += bit_differences(got.data(), le.data(), V);
    }
    std::printf(
        "bf16 activations, one token at a time: max|d| %.3g vs goldens, %.3g vs exact mode (%zu of %zu logits "
        "moved)\n",
        step, vs_exact, moved, toks.size() * V);
    CHECK(moved > 0);                   // the mode is in use for decoding
    CHECK(step < 0.15f);                // bf16 rounding of activations, logits of std ~1.5 (as bf16 prefill)
    CHECK(vs_exact < 0.15f);            // the same bound against the exact mode
    model.set_bf16_activations(false);  // back to exact: bit for bit the default model
    CHECK_FALSE(model.bf16_prefill());
    auto s2 = model.new_state(), se2 = exact.new_state();
    std::size_t off_diffs = 0;
    for (std::size_t t = 0; t < 5; ++t) {
        const auto lg = model.forward(toks[t], s2);
        const std::vector<float> got(lg.begin(), lg.end());
        const auto le = exact.forward(toks[t], se2);
        off_diffs += bit_differences(got.data(), le.data(), V);
    }
    CHECK(off_diffs == 0);

    // Batched decoding in the mode: B = 1, 2, 5, 16, 64 at mixed positions, 1 and 2 threads.
    const auto random = fixtures::dir() / "random";
    for (const char* name : {"rand-x052-L3-D256-H64-V4099", "rand-x060-L3-D256-H64-V4099"}) {
        INFO(name << " (bf16 activations)");
        auto bf = rwkv::Model<rwkv::bfloat16>::load(random / (std::string(name) + ".pth"));
        bf.set_bf16_activations(true);
        check_batched_decode_all(bf, 2);
    }
    auto m = rwkv::Model<rwkv::stored>::load(random / "rand-x060-L2-D128-H64-V1000.bf16.pth");
    m.set_bf16_activations(true);  // 16-bit file kept as stored (LoRA matrices in bf16 too)
    check_batched_decode_all(m, 2);
}
