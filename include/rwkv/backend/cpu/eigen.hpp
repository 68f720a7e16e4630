#pragma once
// Eigen (Core and the QR used by init.hpp), included through here so that GCC 12's false
// -Wmaybe-uninitialized / -Wuninitialized warnings inside Eigen's AVX-512 code stay silent.
//
// Why: with -march=native on an AVX-512 CPU, Eigen's packet code calls intrinsics such as
// _mm512_extractf64x4_pd / _mm512_broadcastss_ps whose GCC 12 definitions pass an
// _mm*_undefined_*() value as the unused merge operand; after inlining, GCC 12 reports that
// deliberately undefined value as "'__Y' may be used uninitialized" (GCC bug 105593, fixed in
// GCC 13) — hundreds of times, which fails a -Werror build (tools/flag-matrix.sh's native
// builds, RWKV_NATIVE=ON with RWKV_WARNINGS_AS_ERRORS=ON). The warnings are in the compiler's
// and Eigen's headers, not in this library's code, so they are silenced only for these includes
// (GCC applies the state in force where Eigen's templates are defined), and only for GCC.
// The library's own intrinsics use the maskz forms instead and need no such pragma.

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <Eigen/Core>
#include <Eigen/QR>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
