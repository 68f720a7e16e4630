#pragma once
// Argument parsing shared by every command-line program (rwkv-generate, rwkv-chat, rwkv-server,
// rwkv-quantize, rwkv-info): a bad argument is one clear line and exit status 2; numbers in messages
// are printed compactly ("[0, 100]", not "[0.000000, 100.000000]"). Light on purpose: rwkv-info and
// rwkv-quantize include it without the model headers cli_common.hpp brings.

#include <rwkv/sampler.hpp>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#ifndef RWKV_VERSION_STRING
#define RWKV_VERSION_STRING "unknown"
#endif

namespace cli {

// A bad argument: the programs print "<prog>: error: <what>" and exit with status 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The shortest text that reads back as x: 0, 100, 0.001, 1e+09.
inline std::string number_text(double x) { return rwkv::detail::number_text(x); }

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
        throw usage_error(std::string(flag) + " expects a number in [" + number_text(lo) + ", " + number_text(hi) +
                          "], got '" + std::string(v) + "'");
    return x;
}

// Walks argv; `value()` takes the flag's argument (accepts --flag VALUE and --flag=VALUE).
// `positional()` is true for an operand (a file name): anything not starting with '-', "-" itself,
// and everything after "--".
class Args {
public:
    Args(int argc, char** argv) : args_(argv + 1, argv + argc) {}
    bool next() {
        if (pos_ >= args_.size()) return false;
        std::string a = args_[pos_++];
        inline_.reset();
        if (!operands_only_ && a == "--") {
            operands_only_ = true;
            return next();
        }
        positional_ = operands_only_ || a.empty() || a[0] != '-' || a == "-";
        if (!positional_ && a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            inline_ = a.substr(a.find('=') + 1);
            a = a.substr(0, a.find('='));
        }
        flag_ = a;
        return true;
    }
    const std::string& flag() const { return flag_; }
    bool positional() const { return positional_; }
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
    bool positional_ = false, operands_only_ = false;
};

// Fails now, before any work, if `path` cannot be written (a missing folder, no permission): an output
// refused after a long run would lose it. Leaves no file behind when there was none.
inline void check_writable(const std::string& path, const char* what) {
    std::error_code ec;
    const bool existed = std::filesystem::exists(path, ec);
    if (existed && std::filesystem::is_directory(path, ec))
        throw usage_error(std::string(what) + " '" + path + "' is a directory");
    std::FILE* f = std::fopen(path.c_str(), "ab");
    if (!f) throw usage_error(std::string(what) + " '" + path + "' cannot be written: " + std::strerror(errno));
    std::fclose(f);
    if (!existed) std::filesystem::remove(path, ec);
}

// The body of a program's main(): returns body()'s exit status; a usage_error prints
// "PROG: error: ..." and exits 2, any other exception the same and exits 1 (the exit codes every
// program documents in --help).
template <class Body>
int run_main(const char* prog, Body&& body) {
    try {
        return body();
    } catch (const usage_error& e) {
        std::fprintf(stderr, "%s: error: %s\n", prog, e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", prog, e.what());
        return 1;
    }
}

}  // namespace cli
