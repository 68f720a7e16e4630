#pragma once
// The message of an expected rwkv::error, so a test can check what it says (and fail when
// nothing is thrown, instead of passing vacuously).

#include <catch2/catch.hpp>

#include <rwkv/error.hpp>

#include <string>

namespace test_support {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const rwkv::error& e) {
        return e.what();
    }
    FAIL("expected rwkv::error");
    return {};
}

}  // namespace test_support
