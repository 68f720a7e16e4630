#pragma once
// Shared by the command-line examples: argument parsing that reports one clear line (including
// the sampling flags), loading a model in its file's weight type, picking the tokenizer, and
// resource reporting.

#include <rwkv/model.hpp>
#include <rwkv/sampler.hpp>
#include <rwkv/tokenizer.hpp>

#include <sys/resource.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace cli {

// A bad argument: the programs print "<prog>: error: <what>" and exit with status 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline long long parse_int(std::string_view flag, std::string_view v, long long lo, long long hi) {
    long long x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size() || x < lo || x > hi)
        throw usage_error(std::string(flag) + " expects an integer in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got '" + std::string(v) + "'");
    return x;
}

inline double parse_double(std::string_view flag, std::string_view v, double lo, double hi) {
    double x = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size() || !(x >= lo && x <= hi))
        throw usage_error(std::string(flag) + " expects a number in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got '" + std::string(v) + "'");
    return x;
}

// Walks argv; `value()` takes the flag's argument (accepts --flag VALUE and --flag=VALUE).
class Args {
public:
    Args(int argc, char** argv) : args_(argv + 1, argv + argc) {}
    bool next() {
        if (pos_ >= args_.size()) return false;
        std::string a = args_[pos_++];
        inline_.reset();
        if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            inline_ = a.substr(a.find('=') + 1);
            a = a.substr(0, a.find('='));
        }
        flag_ = a;
        return true;
    }
    const std::string& flag() const { return flag_; }
    std::string value() {
        if (inline_) return *inline_;
        if (pos_ >= args_.size()) throw usage_error(flag_ + " needs a value");
        return args_[pos_++];
    }

private:
    std::vector<std::string> args_;
    std::size_t pos_ = 0;
    std::string flag_;
    std::optional<std::string> inline_;
};

// The sampling flags both programs take (--temperature, --top-p, --top-k, --presence-penalty,
// --frequency-penalty, --penalty-decay, --seed), parsed in one place so their ranges agree.
// Returns false, consuming nothing, for any other flag; sets have_seed when --seed was given.
inline bool parse_sampling_flag(Args& a, rwkv::SamplerSettings& s, bool& have_seed) {
    const std::string& f = a.flag();
    if (f == "--temperature") s.temperature = parse_double(f, a.value(), 0, 100);
    else if (f == "--top-p") s.top_p = parse_double(f, a.value(), 0, 1);
    else if (f == "--top-k") s.top_k = static_cast<int>(parse_int(f, a.value(), 0, 1 << 30));
    else if (f == "--presence-penalty") s.presence_penalty = parse_double(f, a.value(), -100, 100);
    else if (f == "--frequency-penalty") s.frequency_penalty = parse_double(f, a.value(), -100, 100);
    else if (f == "--penalty-decay") s.penalty_decay = parse_double(f, a.value(), 0, 1);
    else if (f == "--seed") s.seed = static_cast<std::uint64_t>(parse_int(f, a.value(), 0, INT64_MAX)), have_seed = true;
    else return false;
    return true;
}

inline std::string read_file(const std::string& path, const char* what) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw usage_error(std::string("cannot open ") + what + " '" + path + "'");
    std::string out;
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    const bool bad = std::ferror(f);
    std::fclose(f);
    if (bad) throw usage_error(std::string("cannot read ") + what + " '" + path + "'");
    return out;
}

// One interface over Model<float> / Model<bfloat16> / Model<half>: the weights stay in the
// file's own type (zero copy), whatever the file holds.
class Engine {
public:
    virtual ~Engine() = default;
    virtual const rwkv::Config& config() const = 0;
    virtual rwkv::State new_state() const = 0;
    virtual std::span<const float> forward(std::span<const rwkv::token>, rwkv::State&) const = 0;
    virtual const char* weight_type() const = 0;
    virtual void set_threads(int n) = 0;
    virtual int threads() const = 0;
};

template <class T>
class EngineT final : public Engine {
public:
    explicit EngineT(rwkv::Model<T> m) : m_(std::move(m)) {}
    const rwkv::Config& config() const override { return m_.config(); }
    rwkv::State new_state() const override { return m_.new_state(); }
    std::span<const float> forward(std::span<const rwkv::token> t, rwkv::State& s) const override {
        return m_.forward(t, s);
    }
    const char* weight_type() const override { return rwkv::scalar_name<T>(); }
    void set_threads(int n) override { m_.set_threads(n); }
    int threads() const override { return m_.threads(); }

private:
    rwkv::Model<T> m_;
};

inline std::unique_ptr<Engine> load_engine(const std::string& path, bool show_progress) {
    if (!std::filesystem::exists(path)) throw rwkv::error(path + ": no such model file");
    auto file = rwkv::io::load_pth(path);
    for (const std::string& note : file.notes) std::fprintf(stderr, "note: %s: %s\n", path.c_str(), note.c_str());
    const bool big = std::filesystem::file_size(path) > 100u * 1024 * 1024;
    rwkv::Model<float>::Progress progress;
    if (show_progress && big)
        progress = [](int done, int total) {
            const int width = 40, filled = done * width / total;
            std::fprintf(stderr, "\rloading [%.*s%*s] %d/%d layers", filled,
                         "########################################", width - filled, "", done, total);
            if (done == total) std::fputc('\n', stderr);
        };
    const auto* emb = file.find("emb.weight");
    const auto type = emb ? emb->type : rwkv::io::dtype::f32;
    if (type == rwkv::io::dtype::bf16)
        return std::make_unique<EngineT<rwkv::bfloat16>>(rwkv::Model<rwkv::bfloat16>::from_tensors(std::move(file), progress));
    if (type == rwkv::io::dtype::f16)
        return std::make_unique<EngineT<rwkv::half>>(rwkv::Model<rwkv::half>::from_tensors(std::move(file), progress));
    return std::make_unique<EngineT<float>>(rwkv::Model<float>::from_tensors(std::move(file), progress));
}

// World vocabulary when given, bytes for 256-token models, and a clear error otherwise.
using AnyTokenizer = std::variant<rwkv::ByteTokenizer, rwkv::WorldTokenizer>;

inline AnyTokenizer pick_tokenizer(const std::string& vocab, int model_vocab) {
    if (!vocab.empty()) {
        rwkv::WorldTokenizer t(vocab);
        if (static_cast<std::size_t>(model_vocab) < static_cast<std::size_t>(t.max_token_id()) + 1)
            throw usage_error("vocabulary '" + vocab + "' has ids up to " + std::to_string(t.max_token_id()) +
                              " but the model has only " + std::to_string(model_vocab) + " rows");
        return t;
    }
    if (model_vocab == 256) return rwkv::ByteTokenizer{};
    throw usage_error("this model has " + std::to_string(model_vocab) +
                      " tokens: pass --vocab rwkv_vocab_v20230424.txt (the World tokenizer)");
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline double peak_rss_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace cli
