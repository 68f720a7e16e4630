// State: layout, clone, reset, serialisation round trip, and refusal of foreign/corrupt bytes.

#include <rwkv/model.hpp>

#include "errors.hpp"
#include "model_fixtures.hpp"
#include "temp_files.hpp"

using namespace model_fixtures;
using test_support::error_of;
using test_support::temp_dir;

namespace {
std::vector<float> to_vec(std::span<const float> s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("a state has the official per-layer layout", "[state]") {
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 3;
    c.n_embd = 16;
    c.head_size = 4;
    c.vocab_size = 10;
    c.finalize();
    rwkv::State s(c);
    CHECK(s.data().size() == 3u * (2 * 16 + 4 * 4 * 4));
    CHECK(s.att_shift(1).data() == s.data().data() + (2 * 16 + 64));
    CHECK(s.wkv(1).data() == s.att_shift(1).data() + 16);
    CHECK(s.ffn_shift(1).data() == s.wkv(1).data() + 64);
    CHECK_THROWS_AS(s.wkv(3), rwkv::error);
}

TEST_CASE("clone forks, reset clears, serialise round-trips", "[state]") {
    RWKV_REQUIRE_FIXTURES();
    auto m = rwkv::Model<float>::load(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
    const std::vector<rwkv::token> a{72, 101, 108, 108, 111}, b{32, 119, 111};
    auto s = m.new_state();
    m.forward(std::span<const rwkv::token>(a), s);
    auto fork = s.clone();
    auto l1 = to_vec(m.forward(std::span<const rwkv::token>(b), s));
    auto l2 = to_vec(m.forward(std::span<const rwkv::token>(b), fork));
    CHECK(l1 == l2);

    auto bytes = s.serialize();
    auto restored = m.new_state();
    restored.deserialize(bytes);
    CHECK(std::equal(restored.data().begin(), restored.data().end(), s.data().begin()));
    auto l3 = to_vec(m.forward(rwkv::token{33}, s));
    auto l4 = to_vec(m.forward(rwkv::token{33}, restored));
    CHECK(l3 == l4);

    const temp_dir tmp("rwkv-state-test");
    const auto path = tmp.path / "state.bin";
    s.save(path);
    auto from_file = m.new_state();
    from_file.load(path);
    CHECK(std::equal(from_file.data().begin(), from_file.data().end(), s.data().begin()));

    m.reset(s);
    CHECK(std::all_of(s.data().begin(), s.data().end(), [](float x) { return x == 0.0f; }));
}

TEST_CASE("restoring a state from another model, or corrupt bytes, throws", "[state][errors]") {
    RWKV_REQUIRE_FIXTURES();
    auto m5 = rwkv::Model<float>::load(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
    auto m6 = rwkv::Model<float>::load(fixtures::dir() / "random" / "rand-x060-L2-D128-H64-V1000.pth");
    auto s5 = m5.new_state();
    m5.forward(rwkv::token{65}, s5);
    auto bytes = s5.serialize();
    auto s6 = m6.new_state();
    CHECK_THAT(error_of([&] { s6.deserialize(bytes); }), Catch::Contains("another shape") && Catch::Contains("x052"));

    auto t = s5.clone();
    CHECK_THAT(error_of([&] { t.deserialize(std::span(bytes).first(bytes.size() - 5)); }),
               Catch::Contains("truncated"));
    auto bad = bytes;
    bad[100] ^= std::byte{1};
    CHECK_THAT(error_of([&] { t.deserialize(bad); }), Catch::Contains("checksum"));
    bad = bytes;
    bad[0] = std::byte{'X'};
    CHECK_THAT(error_of([&] { t.deserialize(bad); }), Catch::Contains("magic"));
    CHECK_THAT(error_of([&] { t.load("/nonexistent/state.bin"); }), Catch::Contains("/nonexistent/state.bin"));
}

namespace {

rwkv::Config small_config(int vocab = 50, int ffn = 0) {
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 2;
    c.n_embd = 32;
    c.head_size = 8;
    c.vocab_size = vocab;
    c.dim_ffn = ffn;
    c.dim_lora_mix = 4;
    c.dim_lora_decay = 8;
    return c.finalize();
}

// The same state in format 1 (the earlier release's layout: five shape fields, no fingerprint).
std::vector<std::byte> as_format1(const rwkv::State& s) {
    const auto v2 = s.serialize();
    const std::size_t header2 = 8 + 4 + 40 + 8 + 8, floats = s.data().size() * sizeof(float);
    std::vector<std::byte> out(v2.begin(), v2.begin() + 12);
    const std::uint32_t one = 1;
    std::memcpy(out.data() + 8, &one, 4);
    out.insert(out.end(), v2.begin() + 12, v2.begin() + 12 + 20);                    // version .. head_size
    out.insert(out.end(), v2.begin() + header2 - 8, v2.begin() + header2 + floats);  // count, floats
    std::uint64_t h = 1469598103934665603ull;
    for (std::byte x : out) h = (h ^ static_cast<std::uint64_t>(x)) * 1099511628211ull;
    out.resize(out.size() + 8);
    std::memcpy(out.data() + out.size() - 8, &h, 8);
    return out;
}

}  // namespace

TEST_CASE("an empty state serialises and restores without touching memory", "[state][regression]") {
    // Reproducer of the UBSan finding (fuzz_state): memcpy from a null pointer for 0 floats.
    rwkv::State empty;
    const auto bytes = empty.serialize();
    CHECK(bytes.size() == 8 + 4 + 40 + 8 + 8 + 8);
    rwkv::State restored;
    restored.deserialize(bytes);
    CHECK(restored.data().empty());
    CHECK(restored.model_fingerprint() == 0);
}

TEST_CASE("a state records its model's full shape and weights and is refused by another model", "[state][errors]") {
    const auto a = rwkv::Model<float>::random(small_config(), 1, rwkv::Init::fast);
    const auto b = rwkv::Model<float>::random(small_config(), 2, rwkv::Init::fast);
    const auto a_again = rwkv::Model<float>::random(small_config(), 1, rwkv::Init::fast);
    REQUIRE(a.fingerprint() != 0);
    CHECK(a.fingerprint() != b.fingerprint());
    CHECK(a.fingerprint() == a_again.fingerprint());

    auto s = a.new_state();
    CHECK(s.model_fingerprint() == a.fingerprint());
    a.forward(rwkv::token{3}, s);
    const auto bytes = s.serialize();

    // The same weights load it (a model re-made from the same tensors included).
    auto same = a_again.new_state();
    same.deserialize(bytes);
    CHECK(std::equal(same.data().begin(), same.data().end(), s.data().begin()));

    // Same shape, other weights: both models are named, with their fingerprints.
    char fa[17], fb[17];
    std::snprintf(fa, sizeof fa, "%016llx", static_cast<unsigned long long>(a.fingerprint()));
    std::snprintf(fb, sizeof fb, "%016llx", static_cast<unsigned long long>(b.fingerprint()));
    auto other = b.new_state();
    const std::string msg = error_of([&] { other.deserialize(bytes, "chat.state"); });
    CHECK_THAT(msg, Catch::StartsWith("chat.state: state belongs to another model") && Catch::Contains(fa) &&
                        Catch::Contains(fb) && Catch::Contains("same shape, other weights"));
    // ... and forward() refuses a state made by the other model.
    CHECK_THAT(error_of([&] { b.forward(rwkv::token{3}, s); }),
               Catch::Contains("state belongs to another model") && Catch::Contains(fa) && Catch::Contains(fb));

    // Another vocabulary size, another ffn width: the shape fields name the difference.
    const auto v = rwkv::Model<float>::random(small_config(64), 1, rwkv::Init::fast);
    auto sv = v.new_state();
    CHECK_THAT(error_of([&] { sv.deserialize(bytes); }), Catch::Contains("V50") && Catch::Contains("V64"));
    const auto f = rwkv::Model<float>::random(small_config(50, 64), 1, rwkv::Init::fast);
    auto sf = f.new_state();
    CHECK_THAT(error_of([&] { sf.deserialize(bytes); }), Catch::Contains("F96") && Catch::Contains("F64"));
}

TEST_CASE("format-1 state files still load when their shape matches", "[state]") {
    const auto a = rwkv::Model<float>::random(small_config(), 1, rwkv::Init::fast);
    auto s = a.new_state();
    a.forward(rwkv::token{7}, s);
    const auto v1 = as_format1(s);

    auto restored = a.new_state();
    restored.deserialize(v1, "old.state");
    CHECK(std::equal(restored.data().begin(), restored.data().end(), s.data().begin()));
    CHECK(restored.model_fingerprint() == a.fingerprint());  // the target keeps its identity
    // Saved again, it is written in the current format.
    std::uint32_t format = 0;
    const auto again = restored.serialize();
    std::memcpy(&format, again.data() + 8, 4);
    CHECK(format == 2);

    // Without a fingerprint, another model of the same recorded shape accepts it (nothing to
    // tell them apart); one of another shape refuses it and says it was a format-1 file.
    const auto b = rwkv::Model<float>::random(small_config(), 2, rwkv::Init::fast);
    auto sb = b.new_state();
    sb.deserialize(v1);
    rwkv::Config wide = small_config();
    wide.n_embd = 48;
    wide.dim_att = 48;
    wide.n_head = 0;
    wide.dim_ffn = 0;
    const auto w = rwkv::Model<float>::random(wide.finalize(), 1, rwkv::Init::fast);
    auto sw = w.new_state();
    CHECK_THAT(error_of([&] { sw.deserialize(v1, "old.state"); }),
               Catch::StartsWith("old.state: state belongs to a model of another shape") && Catch::Contains("C32") &&
                   Catch::Contains("format 1 state: no fingerprint") && Catch::Contains("C48"));

    auto bad = v1;
    const std::uint32_t nine = 9;
    std::memcpy(bad.data() + 8, &nine, 4);
    CHECK_THAT(error_of([&] { sw.deserialize(bad, "x"); }), Catch::Contains("unsupported state format version 9"));
}

// ---- state-tuning .pth files as initial states (issue 12) ----------------------------------------

#include <rwkv/state_file.hpp>

#include "pickle_builder.hpp"
#include "zip_writer.hpp"

namespace {

// A torch.save-like file of blocks.L.att.time_state tensors [H, N, N] (f32 values base + index),
// plus `extra` tensors of one float each.
std::string time_state_pth(const rwkv::Config& c, int layers, const std::vector<std::string>& extra = {},
                           bool deflate = false) {
    const std::int64_t H = c.n_head, N = c.head_size;
    test_support::pickle_builder p;
    p.proto(2).op('}').mark();
    std::vector<test_support::zip_in> recs;
    for (int l = 0; l < layers; ++l) {
        p.str("blocks." + std::to_string(l) + ".att.time_state")
            .tensor("FloatStorage", std::to_string(l), H * N * N, 0, {H, N, N}, {N * N, N, 1});
        std::string data(static_cast<std::size_t>(H * N * N) * 4, '\0');
        for (std::int64_t i = 0; i < H * N * N; ++i) {
            const float v = static_cast<float>(1000 * l + i);
            std::memcpy(data.data() + i * 4, &v, 4);
        }
        std::string record = "st/data/";  // appended, not "literal" + string: GCC 12 -Wrestrict false positive
        record += std::to_string(l);
        recs.push_back({record, data, 0, deflate});
    }
    for (std::size_t e = 0; e < extra.size(); ++e) {
        std::string key = "x";
        key += std::to_string(e);
        p.str(extra[e]).tensor("FloatStorage", key, 1, 0, {1}, {1});
        recs.push_back({"st/data/" + key, std::string(4, '\0')});
    }
    p.op('u').op('.');
    recs.insert(recs.begin(), {"st/data.pkl", p.b});
    return test_support::make_zip(recs).bytes;
}

}  // namespace

TEST_CASE("a state-tuning .pth (time_state tensors only) loads as an initial state", "[state]") {
    const auto m = rwkv::Model<float>::random(small_config(), 1, rwkv::Init::fast);
    const rwkv::Config& c = m.config();
    const temp_dir tmp("rwkv-state-test");
    const std::int64_t H = c.n_head, N = c.head_size;
    for (bool deflate : {false, true}) {
        auto s = m.new_state();
        m.forward(rwkv::token{1}, s);  // the shifts become non-zero; loading resets them
        rwkv::load_state_file(s, tmp.write("tuned.pth", time_state_pth(c, c.n_layer, {}, deflate)));
        CHECK(std::all_of(s.att_shift(1).begin(), s.att_shift(1).end(), [](float x) { return x == 0.0f; }));
        // Stored [h][value j][key i]: element (h, j, i) of layer l is 1000 l + (h N + j) N + i.
        const auto w = s.wkv(1);
        const std::int64_t h = H - 1, i = 2, j = 5;
        CHECK(w[static_cast<std::size_t>((h * N + i) * N + j)] == static_cast<float>(1000 + (h * N + j) * N + i));
        CHECK(s.model_fingerprint() == m.fingerprint());
        m.forward(rwkv::token{2}, s);  // and it runs
    }
    // The same file through the rwkv state-file path still works for native states.
    auto native = m.new_state();
    native.save(tmp.path / "native.state");
    auto back = m.new_state();
    rwkv::load_state_file(back, tmp.path / "native.state");
}

TEST_CASE("state-only .pth files that do not fit the model are refused by name", "[state][errors]") {
    const auto m = rwkv::Model<float>::random(small_config(), 1, rwkv::Init::fast);
    const rwkv::Config& c = m.config();
    const temp_dir tmp("rwkv-state-test");
    auto s = m.new_state();
    m.forward(rwkv::token{1}, s);
    const std::vector<float> before(s.data().begin(), s.data().end());
    auto err = [&](const std::string& bytes) {
        const auto p = tmp.write("bad.pth", bytes);
        const std::string msg = error_of([&] { rwkv::load_state_file(s, p); });
        CHECK_THAT(msg, Catch::StartsWith(p.string() + ": "));
        CHECK(std::equal(before.begin(), before.end(), s.data().begin()));  // unchanged
        return msg;
    };
    CHECK_THAT(err(time_state_pth(c, 1)), Catch::Contains("missing tensor 'blocks.1.att.time_state'"));
    // State::load itself reads only rwkv state files, and says where a .pth goes.
    const auto tuned = tmp.write("tuned.pth", time_state_pth(c, 2));
    CHECK_THAT(error_of([&] { s.load(tuned); }), Catch::Contains("bad magic") && Catch::Contains("load_state_file"));
    CHECK_THAT(err(time_state_pth(c, 3)),
               Catch::Contains("'blocks.2.att.time_state' is for layer 2 but the model has 2"));
    CHECK_THAT(err(time_state_pth(c, 2, {"emb.weight"})),
               Catch::Contains("not a state-only file: tensor 'emb.weight'"));
    rwkv::Config other = c;
    other.head_size = 4;
    other.n_head = 8;
    CHECK_THAT(err(time_state_pth(other, 2)), Catch::Contains("has shape [8, 4, 4], expected [4, 8, 8]"));
}
