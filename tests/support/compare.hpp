#pragma once
// Random inputs and element-wise comparisons shared by the kernel tests (CPU ops, the CUDA math
// run on the host, and the CUDA tests on a device), so that every test judges closeness the same
// way — including NaN and infinity, which a plain `excess > worst` comparison lets through.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace test_support {

// n floats uniform in [lo, hi).
inline std::vector<float> rnd(std::size_t n, std::mt19937& g, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

// Requires |a - b| <= atol + rtol·|b| at every element and every a finite; on failure names the
// worst element (a non-finite one first).
inline void check_close(const std::vector<float>& a, const std::vector<float>& b, float atol, float rtol,
                        const std::string& what) {
    REQUIRE(a.size() == b.size());
    float worst = 0.0f;
    std::size_t at = 0;
    bool finite = true;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) {
            if (finite) at = i;
            finite = false;
            continue;
        }
        const float excess = std::abs(a[i] - b[i]) - (atol + rtol * std::abs(b[i]));
        if (finite && excess > worst) worst = excess, at = i;
    }
    INFO(what << ": worst element " << at << " of " << a.size() << ": got " << (a.empty() ? 0.0f : a[at]) << " want "
              << (b.empty() ? 0.0f : b[at]));
    CHECK(finite);
    CHECK(worst <= 0.0f);
}

// max |a - b| / RMS(b): for the WKV state and outputs, which span many magnitudes. B is float or
// double (a double reference).
template <class B>
double rel_rms(const std::vector<float>& a, const std::vector<B>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
        den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
    }
    if (!std::isfinite(num)) return num;
    return num / std::max(1e-300, std::sqrt(den / static_cast<double>(std::max<std::size_t>(1, a.size()))));
}

}  // namespace test_support
