#pragma once
// Shared by the fuzz harnesses (tests/fuzz/fuzz_<name>.cpp): a harness lets rwkv::error through
// as the expected outcome of bad input; anything else (a crash, a sanitizer report, any other
// exception escaping) is a finding.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>

namespace fuzz {

inline std::span<const std::byte> bytes_of(const std::uint8_t* data, std::size_t size) {
    return {reinterpret_cast<const std::byte*>(data), size};
}

// Reads every byte so that ASan checks a span really lies inside live memory; the result is
// only consumed to keep the loop from being optimised away.
inline unsigned touch(std::span<const std::byte> s) {
    unsigned x = 0;
    for (std::byte b : s) x += std::to_integer<unsigned>(b);
    return x;
}

// Stops the run with a message libFuzzer records as a crash (a wrong answer, not a bad input).
[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
    std::abort();
}

// An in-memory file (memfd) holding `data`, reachable by path, so that readers taking a path run
// end to end (open, fstat, mmap) without touching the disk. Closed on destruction.
class memory_file {
public:
    memory_file(const std::uint8_t* data, std::size_t size) {
        fd_ = ::memfd_create("rwkv-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) throw std::runtime_error("memfd_create failed");
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::write(fd_, data + done, size - done);
            if (n <= 0) throw std::runtime_error("memfd write failed");
            done += static_cast<std::size_t>(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~memory_file() { ::close(fd_); }
    memory_file(const memory_file&) = delete;
    memory_file& operator=(const memory_file&) = delete;
    const std::string& path() const { return path_; }

private:
    int fd_ = -1;
    std::string path_;
};

}  // namespace fuzz
