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
    CHECK_THAT(error_of([&] { t.deserialize(std::span(bytes).first(bytes.size() - 5)); }), Catch::Contains("truncated"));
    auto bad = bytes;
    bad[100] ^= std::byte{1};
    CHECK_THAT(error_of([&] { t.deserialize(bad); }), Catch::Contains("checksum"));
    bad = bytes;
    bad[0] = std::byte{'X'};
    CHECK_THAT(error_of([&] { t.deserialize(bad); }), Catch::Contains("magic"));
    CHECK_THAT(error_of([&] { t.load("/nonexistent/state.bin"); }), Catch::Contains("/nonexistent/state.bin"));
}
