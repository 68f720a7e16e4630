#pragma once
// rwkv::error — the one exception type every user-caused failure throws.

#include <stdexcept>
#include <string>

namespace rwkv {

// Derived from std::runtime_error so callers that catch the standard type still see it;
// messages always name the file / tensor / value that was wrong.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace rwkv
