#pragma once
// Shared by the model tests: the golden-fixture cases of ../shared/fixtures/{tiny,random}.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <rwkv/token.hpp>

#include "fixtures.hpp"

namespace model_fixtures {

struct Case {
    std::string name;
    std::filesystem::path model, manifest, logits, state, greedy_logits;
    bool compare_state = true;
};

inline std::vector<Case> cases() {
    const auto d = fixtures::dir();
    std::vector<Case> out;
    for (std::string m : {"tiny-rwkv-5v2-730K", "tiny-rwkv-6v0-1m"}) {
        const auto b = d / "tiny" / m;
        out.push_back({m, b.string() + ".pth", b.string() + ".textA.json", b.string() + ".textA.step_logits.f32",
                       b.string() + ".textA.state.f32", b.string() + ".textA.greedy_logits.f32"});
    }
    for (std::string m : {"rand-x052-L2-D128-H64-V1000", "rand-x060-L2-D128-H64-V1000", "rand-x052-L3-D256-H64-V4099",
                          "rand-x060-L3-D256-H64-V4099"}) {
        const auto b = (d / "random" / m).string();
        out.push_back({m, b + ".pth", b + ".json", b + ".logits.f32", b + ".state.f32", {}});
    }
    // Low-precision files compare with the goldens of the same values widened to fp32 first.
    // The bf16 golden state comes from the reference's bf16 ln0 path, so only fp16's applies.
    const auto b = (d / "random" / "rand-x060-L2-D128-H64-V1000").string();
    out.push_back({"rand-x060-L2-D128-H64-V1000.bf16",
                   b + ".bf16.pth",
                   b + ".bf16.json",
                   b + ".bf16.upcast_first.logits.f32",
                   {},
                   {},
                   false});
    out.push_back({"rand-x060-L2-D128-H64-V1000.fp16",
                   b + ".fp16.pth",
                   b + ".fp16.json",
                   b + ".fp16.upcast_first.logits.f32",
                   b + ".fp16.state.f32",
                   {},
                   true});
    return out;
}

inline std::vector<rwkv::token> tokens(const Case& c) {
    return fixtures::read_json(c.manifest)["tokens"].ints<rwkv::token>();
}

inline float max_abs_diff(const float* a, const float* b, std::size_t n) {
    float m = 0.0f;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

// max over elements of |a-b| / max(1, |b|): the tiny x060 model's state reaches |188|.
inline float max_rel_diff(const float* a, const float* b, std::size_t n) {
    float m = 0.0f;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0f, std::abs(b[i])));
    return m;
}

inline int argmax(std::span<const float> v) {
    return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());  // first = lowest id on ties
}

}  // namespace model_fixtures
