// Tests for <rwkv/session.hpp>: the generation loop (UTF-8 streaming, stop strings split over
// tokens, end of text, undecodable ids, callbacks, cancel), the chat helper, fork, and save/load
// continuing exactly — on a scripted fake model (exact control over what is sampled) and on the
// bundled demo model and random models (real numbers).

#include <rwkv/model.hpp>
#include <rwkv/session.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "errors.hpp"
#include "fixtures.hpp"
#include "temp_files.hpp"

using test_support::error_of;
using test_support::temp_dir;

namespace {

// A model that "predicts" a fixed script: the logits after the n-th token fed peak (10) at
// script[n % size], with `runner_up` (if >= 0) at 5. The position lives in the state, so forks,
// save/load and reset behave like a real model's.
struct ScriptedModel {
    rwkv::Config cfg;
    std::vector<rwkv::token> script;
    rwkv::token runner_up = -1;
    mutable std::vector<float> out;

    ScriptedModel(int vocab, std::vector<rwkv::token> s, rwkv::token second = -1)
        : script(std::move(s)), runner_up(second) {
        cfg.n_layer = 1, cfg.n_embd = 1, cfg.n_head = 1, cfg.head_size = 1, cfg.vocab_size = vocab;
    }
    const rwkv::Config& config() const { return cfg; }
    rwkv::State new_state() const { return rwkv::State(cfg); }
    void reset(rwkv::State& s) const { s.reset(); }
    std::span<const float> forward(std::span<const rwkv::token> t, rwkv::State& s) const {
        for (const rwkv::token x : t)
            if (x < 0 || x >= cfg.vocab_size) throw rwkv::error("bad token " + std::to_string(x));
        s.data()[0] += static_cast<float>(t.size());
        out.assign(static_cast<std::size_t>(cfg.vocab_size), 0.0f);
        const auto n = static_cast<std::size_t>(s.data()[0]) - 1;
        out[static_cast<std::size_t>(script[n % script.size()])] = 10.0f;
        if (runner_up >= 0) out[static_cast<std::size_t>(runner_up)] = 5.0f;
        return out;
    }
    void forward_all(std::span<const rwkv::token>, rwkv::State&, std::span<float>) const {}
    std::span<const float> forward_batch(std::span<const rwkv::token>, std::span<rwkv::State* const>) const {
        return {};
    }
    void set_threads(int) {}
    int threads() const { return 1; }
    std::string weight_type() const { return "scripted"; }
};

std::vector<rwkv::token> bytes_of(std::string_view s) { return rwkv::ByteTokenizer{}.encode(s); }

// A byte-level session whose greedy output, after any prompt of one token, is `text` (looping).
rwkv::Session scripted(std::string_view text) {
    // The prompt takes position 0, so the first generated token is script[0] at logits index 0.
    rwkv::Session s(rwkv::AnyModel(ScriptedModel(256, bytes_of(text))), rwkv::AnyTokenizer::bytes(),
                    {.temperature = 0.0});
    return s;
}

rwkv::Model<float> random_model(std::uint64_t seed) {
    rwkv::Config c;
    c.version = rwkv::Version::x060;
    c.n_layer = 2;
    c.n_embd = 64;
    c.head_size = 32;
    c.vocab_size = 256;
    return rwkv::Model<float>::random(c, seed, rwkv::Init::fast);
}

const std::filesystem::path demo_model =
    std::filesystem::path(RWKV_SOURCE_DIR) / "examples" / "models" / "demo-x060-L4-D128-fortunes.pth";

}  // namespace

TEST_CASE("session: generate streams the script and counts tokens", "[session]") {
    auto s = scripted("Hello");
    CHECK_THROWS_WITH(s.generate(3), Catch::Contains("call prompt() first"));
    CHECK(s.prompt("x") == 1);
    std::string streamed;
    const auto r = s.generate(5, [&](std::string_view t) {
        streamed += t;
        return true;
    });
    CHECK(r.text == "Hello");
    CHECK(streamed == "Hello");
    CHECK(r.tokens == 5);
    CHECK(r.reason == rwkv::StopReason::max_tokens);
    CHECK(s.position() == 6);
}

TEST_CASE("session: a stop string split over tokens is never emitted", "[session]") {
    auto s = scripted("ab\n\nUser: more");
    s.prompt("x");
    std::vector<std::string> pieces;
    rwkv::GenerateOptions opt;
    opt.stop = {"\n\nUser:", "zzz"};
    const auto r = s.generate(
        100,
        [&](std::string_view t) {
            pieces.emplace_back(t);
            return true;
        },
        opt);
    CHECK(r.text == "ab");
    CHECK(r.reason == rwkv::StopReason::stop_string);
    CHECK(r.tokens == 9);  // the stop string's tokens were fed to the state
    for (const auto& p : pieces) CHECK(p.find('\n') == std::string::npos);

    // A held-back prefix that turns out not to be a stop string is released in order.
    auto t = scripted("a\nb\n\nc");
    t.prompt("x");
    opt.stop = {"\n\n"};
    CHECK(t.generate(100, {}, opt).text == "a\nb");
    CHECK_THROWS_WITH(t.generate(1, {}, {.stop = {""}}), Catch::Contains("empty stop string"));
}

TEST_CASE("session: text arrives in whole UTF-8 characters", "[session]") {
    const std::string text = "é€😀";
    auto s = scripted(text);
    s.prompt("x");
    std::vector<std::string> pieces;
    s.generate(text.size(), [&](std::string_view t) {
        pieces.emplace_back(t);
        return true;
    });
    CHECK(pieces == std::vector<std::string>{"é", "€", "😀"});
    // A character cut by the token budget ends as U+FFFD, never as a stray byte.
    auto cut = scripted(text);
    cut.prompt("x");
    CHECK(cut.generate(4).text == "é\xEF\xBF\xBD");
}

TEST_CASE("session: the callback and the cancel flag stop generation", "[session]") {
    auto s = scripted("abcdef");
    s.prompt("x");
    int calls = 0;
    const auto r = s.generate(100, [&](std::string_view) { return ++calls < 3; });
    CHECK(r.reason == rwkv::StopReason::callback);
    CHECK(r.text == "abc");
    CHECK(r.tokens == 3);

    std::atomic<bool> cancel{true};
    const auto c = s.generate(100, {}, {.cancel = &cancel});
    CHECK(c.reason == rwkv::StopReason::cancelled);
    CHECK(c.tokens == 0);
}

TEST_CASE("session: World end of text and undecodable ids", "[session]") {
    const auto vocab = rwkv::WorldTokenizer::from_text("1 'a' 1\n2 'b' 1\n3 'c' 1\n", "mini-vocab");
    // The script wants id 60 (a model row the vocabulary does not define), then 0 (end of text).
    rwkv::Session s(rwkv::AnyModel(ScriptedModel(64, {60, 2, 0}, 1)), rwkv::AnyTokenizer(vocab), {.temperature = 0.0});
    CHECK(s.undecodable().size() == 60);  // ids 4..63
    CHECK(s.undecodable().front() == 4);
    s.prompt("c");
    const auto r = s.generate(10);
    // 60 is banned, so the runner-up 'a' comes first; then 'b'; then end of text, which is not fed.
    CHECK(r.text == "ab");
    CHECK(r.reason == rwkv::StopReason::end_of_text);
    CHECK(s.position() == 3);
    CHECK(std::string(rwkv::stop_reason_name(r.reason)) == "end_of_text");

    // A user ban on top of the automatic ones; an out-of-range ban is refused with its id.
    CHECK_THROWS_WITH(s.set_sampling({.banned = {64}}), Catch::Contains("banned token 64"));
    // A tokenizer with ids the model lacks is refused.
    CHECK_THROWS_WITH(rwkv::Session(rwkv::AnyModel(ScriptedModel(3, {1})), rwkv::AnyTokenizer(vocab)),
                      Catch::Contains("ids up to 3") && Catch::Contains("only 3 rows"));
    CHECK_THROWS_WITH(rwkv::AnyTokenizer::for_model(65536), Catch::Contains("rwkv_vocab_v20230424.txt"));
    CHECK(std::string(rwkv::AnyTokenizer::for_model(256).kind()) == "bytes");
}

TEST_CASE("session: chat keeps the World chat format", "[session]") {
    CHECK(rwkv::Session::clean_chat_message("  hi\r\n\n\nthere \n") == "hi\nthere");
    // Everything the model sees is scripted by position: prompt "User: hi\n\nAssistant:" is 19 bytes.
    const std::string prompt = "User: hi\n\nAssistant:";
    std::string script(prompt.size() - 1, '.');
    script += " Hello!\n\nUser";
    auto s = scripted(script);
    std::string streamed;
    const auto r = s.chat("hi", 50, [&](std::string_view t) {
        streamed += t;
        return true;
    });
    CHECK(r.text == "Hello!");
    CHECK(streamed == "Hello!");
    CHECK(r.reason == rwkv::StopReason::stop_string);
    CHECK(s.position() == prompt.size() + 9);  // prompt + " Hello!\n\n"
    CHECK_THROWS_WITH(s.chat(" \n ", 5), Catch::Contains("empty message"));

    // A reply cut by the budget still closes the turn with "\n\n".
    auto t = scripted(script);
    const auto cut = t.chat("hi", 3);
    CHECK(cut.reason == rwkv::StopReason::max_tokens);
    CHECK(cut.text == "He");
    CHECK(t.position() == prompt.size() + 3 + 2);
}

TEST_CASE("session: fork is independent", "[session]") {
    rwkv::Session a(rwkv::AnyModel::load(demo_model), rwkv::AnyTokenizer::bytes(),
                    {.temperature = 1.0, .top_p = 0.9, .seed = 5});
    a.prompt("The cat");
    auto b = a.fork();
    const auto ra = a.generate(30);
    const auto rb = b.generate(30);
    CHECK(ra.text == rb.text);
    CHECK(a.position() == b.position());
    b.prompt(" and");
    CHECK(a.position() + 4 == b.position());
}

TEST_CASE("session: a saved session continues exactly like an uninterrupted one", "[session]") {
    const rwkv::SamplerSettings sampling{
        .temperature = 1.0, .top_p = 0.9, .presence_penalty = 0.4, .frequency_penalty = 0.4, .seed = 11};
    const auto model = rwkv::AnyModel::load(demo_model);
    rwkv::Session whole(model, rwkv::AnyTokenizer::bytes(), sampling);
    whole.prompt("Once upon a time");
    whole.generate(25);

    const temp_dir tmp("rwkv-session-test");
    const auto path = tmp.path / "s.session";
    whole.save(path);
    const auto rest = whole.generate(40);

    // A fresh session (other settings, other seed) becomes the saved one.
    rwkv::Session restored(model, rwkv::AnyTokenizer::bytes(), {.temperature = 0.0, .seed = 99});
    restored.load(path);
    CHECK(restored.sampling().seed == 11);
    CHECK(restored.sampling().presence_penalty == 0.4);
    CHECK(restored.position() == whole.position() - rest.tokens);
    const auto again = restored.generate(40);
    CHECK(again.text == rest.text);
    CHECK(again.tokens == rest.tokens);
    CHECK(restored.position() == whole.position());
    CHECK(std::equal(restored.logits().begin(), restored.logits().end(), whole.logits().begin()));

    // In memory too, and a bare State file (State::save) restores only the state.
    const auto bytes = whole.serialize();
    rwkv::Session mem(model, rwkv::AnyTokenizer::bytes());
    mem.deserialize(bytes);
    CHECK(mem.position() == whole.position());
    whole.state().save(tmp.path / "bare.state");
    rwkv::Session bare(model, rwkv::AnyTokenizer::bytes());
    bare.load(tmp.path / "bare.state");
    CHECK(bare.logits().empty());
    CHECK(std::equal(bare.state().data().begin(), bare.state().data().end(), whole.state().data().begin()));
}

TEST_CASE("session: files from another model, corrupt or truncated files are refused", "[session]") {
    rwkv::Session a(rwkv::AnyModel(random_model(1)), rwkv::AnyTokenizer::bytes());
    a.prompt("abc");
    const auto bytes = a.serialize();

    // Same shape, other weights.
    rwkv::Session b(rwkv::AnyModel(random_model(2)), rwkv::AnyTokenizer::bytes());
    b.prompt("zz");
    CHECK(error_of([&] { b.deserialize(bytes, "a.session"); }) ==
          "a.session: session was saved from a model with other weights (same shape x060 L2 C64 H2 N32 V256, "
          "different logits for the probe token)");
    CHECK(b.position() == 2);  // unchanged

    // Another shape.
    rwkv::Session d(rwkv::AnyModel::load(demo_model), rwkv::AnyTokenizer::bytes());
    CHECK_THROWS_WITH(d.deserialize(bytes, "a.session"),
                      Catch::StartsWith("a.session: session is for a model of another shape (x060 L2 C64"));

    // Corrupt and truncated bytes.
    auto corrupt = bytes;
    corrupt[40] ^= std::byte{1};
    CHECK(error_of([&] { a.deserialize(corrupt, "c"); }) == "c: checksum mismatch (corrupt file)");
    auto truncated = std::vector<std::byte>(bytes.begin(), bytes.begin() + 10);
    CHECK_THROWS_WITH(a.deserialize(truncated, "t"), Catch::StartsWith("t: "));
    CHECK(error_of([&] { a.deserialize(std::vector<std::byte>(32), "z"); }) ==
          "z: not an rwkv session or state file (bad magic)");
    CHECK_THROWS_WITH(a.load("/nonexistent/x.session"), Catch::Contains("/nonexistent/x.session"));
    CHECK_THROWS_WITH(a.save("/nonexistent/x.session"), Catch::Contains("cannot write"));
}

TEST_CASE("session: long prompts report progress and give the same logits", "[session]") {
    RWKV_REQUIRE_FIXTURES();
    const auto model = rwkv::AnyModel::load(fixtures::dir() / "tiny" / "tiny-rwkv-5v2-730K.pth");
    std::string text;
    while (text.size() < 5000) text += "The quick brown fox jumps over the lazy dog. ";
    rwkv::Session sliced(model, rwkv::AnyTokenizer::bytes()), whole(model, rwkv::AnyTokenizer::bytes());
    std::vector<std::size_t> seen;
    sliced.prompt(text, [&](std::size_t done, std::size_t total) {
        CHECK(total == text.size());
        seen.push_back(done);
    });
    whole.prompt(text);
    CHECK(seen == std::vector<std::size_t>{4096, text.size()});
    for (std::size_t i = 0; i < whole.logits().size(); ++i)
        REQUIRE(sliced.logits()[i] == Approx(whole.logits()[i]).margin(1e-4));
}

TEST_CASE("AnyModel: the opt-in activation modes reach the typed model", "[session]") {
    // Block format, int8 activations: the wrapped model gives what the typed model in the same
    // mode gives, bit for bit, and something else than the exact mode.
    auto check_mode = [](auto typed, auto set_mode) {
        rwkv::AnyModel any(typed);  // shares typed's weights, not its settings
        auto run = [](auto& m) {
            auto s = m.new_state();
            m.forward(std::vector<rwkv::token>{72, 101, 108}, s);
            const auto l = m.forward(rwkv::token{108}, s);
            return std::vector<float>(l.begin(), l.end());
        };
        const auto exact = run(any);
        set_mode(any, true);
        set_mode(typed, true);
        const auto a = run(any), t = run(typed);
        CHECK(a == t);
        CHECK(a != exact);
        set_mode(any, false);
        CHECK(run(any) == exact);
    };
    SECTION("int8") {
        check_mode(rwkv::Model<rwkv::q4_0>::load(demo_model), [](auto& m, bool on) { m.set_int8_activations(on); });
    }
    SECTION("bf16") {
        check_mode(rwkv::Model<rwkv::bfloat16>::load(demo_model), [](auto& m, bool on) { m.set_bf16_activations(on); });
    }
    SECTION("a model type without the modes") {
        rwkv::AnyModel any(ScriptedModel(8, {1}));
        CHECK_FALSE(any.int8_activations());
        any.set_int8_activations(false);
        any.set_bf16_activations(false);
        CHECK_THAT(test_support::error_of([&] { any.set_int8_activations(true); }),
                   Catch::Contains("no int8-activation mode"));
        CHECK_THAT(test_support::error_of([&] { any.set_bf16_activations(true); }),
                   Catch::Contains("no bf16-activation mode"));
    }
}
