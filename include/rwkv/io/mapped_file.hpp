#pragma once
// Read-only memory mapping of a whole file (POSIX). Weights are used in place, so a 15 GB
// checkpoint costs page cache, not heap.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"

namespace rwkv::io {

class mapped_file {
public:
    explicit mapped_file(std::filesystem::path path) : path_(std::move(path)) {
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open", errno);
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            int e = errno;
            ::close(fd);
            fail("cannot stat", e);
        }
        if (S_ISDIR(st.st_mode)) {
            ::close(fd);
            fail("cannot map", EISDIR);
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            throw rwkv::error(path_.string() + ": cannot map: not a regular file");
        }
        if (static_cast<std::uintmax_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
            ::close(fd);
            fail("cannot map", EFBIG);
        }
        size_ = static_cast<std::size_t>(st.st_size);
        // mmap rejects length 0; an empty file is simply an empty span.
        if (size_ != 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                int e = errno;
                ::close(fd);
                fail("cannot map", e);
            }
            data_ = static_cast<const std::byte*>(p);
        }
        ::close(fd);  // the mapping stays valid without the descriptor
    }

    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;

    mapped_file(mapped_file&& other) noexcept
        : path_(std::move(other.path_)),
          data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}

    mapped_file& operator=(mapped_file&& other) noexcept {
        if (this != &other) {
            unmap();
            path_ = std::move(other.path_);
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }

    ~mapped_file() { unmap(); }

    std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

    // Drops from this process's resident set every whole page of the mapping that holds none of
    // the byte ranges in `keep` (ranges outside this mapping are ignored). The contents stay
    // readable: the mapping is read-only and private, so a later read pages them in again from
    // the file. A loaded model calls this for what it copied out of the file (the copies, not the
    // file's pages, are then what it keeps resident). Returns the bytes advised away; 0 where
    // madvise(MADV_DONTNEED) does not exist.
    std::size_t release_except(std::vector<std::span<const std::byte>> keep) const {
#ifdef MADV_DONTNEED
        if (data_ == nullptr || size_ == 0) return 0;
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto lo = reinterpret_cast<std::uintptr_t>(data_), hi = lo + size_;
        std::vector<std::pair<std::uintptr_t, std::uintptr_t>> kept;
        for (const auto& k : keep) {
            const auto a = reinterpret_cast<std::uintptr_t>(k.data()), b = a + k.size();
            if (!k.empty() && a < hi && b > lo) kept.emplace_back(std::max(a, lo), std::min(b, hi));
        }
        std::sort(kept.begin(), kept.end());
        std::size_t released = 0;
        auto drop = [&](std::uintptr_t a, std::uintptr_t b) {  // the whole pages inside [a, b)
            a = (a + page - 1) / page * page;
            b = b == hi ? (b + page - 1) / page * page : b / page * page;  // the mapping ends on a page
            if (b > a && ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) == 0) released += b - a;
        };
        std::uintptr_t from = lo;  // start of the current gap between kept ranges
        for (const auto& [a, b] : kept) {
            if (a > from) drop(from, a);
            from = std::max(from, b);
        }
        if (hi > from) drop(from, hi);
        return released;
#else
        (void)keep;
        return 0;
#endif
    }

    // Drops from the resident set the whole pages of the mapping that lie inside `range` (pages it
    // shares with bytes outside stay): a loader calls it for each tensor as soon as it has copied
    // the values out, so the source's pages do not pile up next to the copies. Contents stay
    // readable as above. Returns the bytes advised away (0 for a range outside this mapping).
    std::size_t release(std::span<const std::byte> range) const {
#ifdef MADV_DONTNEED
        if (data_ == nullptr || range.empty()) return 0;
        const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
        const auto lo = reinterpret_cast<std::uintptr_t>(data_), hi = lo + size_;
        auto a = reinterpret_cast<std::uintptr_t>(range.data());
        auto b = a + range.size();
        if (a < lo || b > hi) return 0;
        a = (a + page - 1) / page * page;
        b = b == hi ? (b + page - 1) / page * page : b / page * page;  // the mapping ends on a page
        if (b <= a || ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED) != 0) return 0;
        return b - a;
#else
        (void)range;
        return 0;
#endif
    }

    std::size_t size() const noexcept { return size_; }
    const std::filesystem::path& path() const noexcept { return path_; }

private:
    [[noreturn]] void fail(const char* what, int err) const {
        throw rwkv::error(path_.string() + ": " + what + ": " + std::strerror(err));
    }

    void unmap() noexcept {
        if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
        data_ = nullptr;
        size_ = 0;
    }

    std::filesystem::path path_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace rwkv::io
