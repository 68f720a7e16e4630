// The CPU feature probe (backend/cpu/isa.hpp) and the SIMD architecture the generic kernels are
// compiled for. On aarch64 the generic path is the only one and runs on xsimd's NEON batches: this
// is what makes the emulated aarch64 test run (tools/test-aarch64.sh) a test of NEON code.

#include <rwkv/backend/cpu/isa.hpp>
#include <rwkv/backend/cpu/matvec.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

using namespace rwkv::backend::cpu;

TEST_CASE("the active path is one this CPU supports, capped by RWKV_ISA") {
    CHECK(isa_supported(Isa::generic));
    CHECK(isa_supported(active_isa()));
    CHECK(active_isa() <= detect_isa());
    CHECK(std::string(isa_name(active_isa())) != "");
#if !RWKV_ISA_X86
    // No x86 paths exist off x86: the generic kernels are what runs.
    CHECK_FALSE(isa_supported(Isa::avx2));
    CHECK_FALSE(isa_supported(Isa::avx512));
    CHECK(active_isa() == Isa::generic);
#endif
}

TEST_CASE("the generic kernels use the build's SIMD architecture (NEON on aarch64)") {
    INFO("xsimd default architecture: " << xsimd::default_arch::name());
#if defined(__aarch64__)
    STATIC_REQUIRE(std::is_same_v<xsimd::default_arch, xsimd::neon64>);
    STATIC_REQUIRE(std::is_same_v<matvec_detail::GVec, xsimd::batch<float, xsimd::neon64>>);
    STATIC_REQUIRE(matvec_detail::gvec_size == 4);
    CHECK(std::string(xsimd::default_arch::name()).find("neon") != std::string::npos);
#elif defined(__x86_64__)
    // SSE2 at least (x86-64's baseline); wider with -march flags.
    STATIC_REQUIRE(matvec_detail::gvec_size >= 4);
#endif
    // The batch type does arithmetic: a 4-wide fused multiply-add and a horizontal sum.
    alignas(64) float a[matvec_detail::gvec_size], b[matvec_detail::gvec_size];
    for (std::size_t i = 0; i < matvec_detail::gvec_size; ++i) {
        a[i] = static_cast<float>(i + 1);
        b[i] = 2.0f;
    }
    const auto v =
        matvec_detail::gvec_fma(matvec_detail::gvec_load(a), matvec_detail::gvec_load(b), matvec_detail::gvec_zero());
    const float n = static_cast<float>(matvec_detail::gvec_size);
    CHECK(matvec_detail::gvec_sum(v) == n * (n + 1.0f));
}
