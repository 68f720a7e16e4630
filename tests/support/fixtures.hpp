#pragma once
// Locating and reading the golden fixtures (../shared/fixtures by default; the CMake cache
// variable RWKV_FIXTURES_DIR moves it). Tests that need them skip with a message when the
// folder is absent, so a checkout without shared/ still builds and runs the rest.

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "json.hpp"

namespace fixtures {

inline std::filesystem::path dir() { return std::filesystem::path(RWKV_FIXTURES_DIR); }

inline bool available() { return std::filesystem::exists(dir() / "README.md"); }

// Use at the top of a TEST_CASE: returns from it (with a visible warning) when absent.
#define RWKV_REQUIRE_FIXTURES()                                                                                        \
    do {                                                                                                               \
        if (!::fixtures::available()) {                                                                                \
            WARN("SKIPPED: fixtures not found at " << ::fixtures::dir().string() << " (set -DRWKV_FIXTURES_DIR=...)"); \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open fixture " + p.string());
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline std::vector<float> read_f32(const std::filesystem::path& p) {
    std::string bytes = read_text(p);
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
}

inline test_json::value read_json(const std::filesystem::path& p) { return test_json::parse(read_text(p)); }

}  // namespace fixtures
