#pragma once
// A scratch folder for files a test writes, unique per process and instance (tests of one
// executable may run side by side with other test executables), removed with its contents.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>

namespace test_support {

struct temp_dir {
    std::filesystem::path path;

    explicit temp_dir(const std::string& prefix) {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() /
               (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;  // best effort: a failed clean-up must not fail the test
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    // Writes (or overwrites) `name` in the folder with exactly these bytes.
    std::filesystem::path write(const std::string& name, const std::string& content) const {
        std::filesystem::path p = path / name;
        std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
        return p;
    }
};

}  // namespace test_support
