// rwkv::io::mapped_file: read-only POSIX mapping with errors that name the path.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <type_traits>

#include "rwkv/io/mapped_file.hpp"

namespace fs = std::filesystem;
using rwkv::io::mapped_file;

namespace {

// A fresh directory per test case, removed afterwards.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() /
               ("rwkv-mapped-file-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path write(const std::string& name, const std::string& content) const {
        fs::path p = path / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

std::string as_string(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

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

}  // namespace

static_assert(!std::is_copy_constructible_v<mapped_file>);
static_assert(!std::is_copy_assignable_v<mapped_file>);
static_assert(std::is_nothrow_move_constructible_v<mapped_file>);
static_assert(std::is_nothrow_move_assignable_v<mapped_file>);

TEST_CASE("mapped_file maps a file's bytes read-only", "[mapped_file]") {
    temp_dir tmp;
    std::string content = "hello, mapped world";
    content.push_back('\0');
    content += "\xff\x01 tail";
    const fs::path p = tmp.write("a.bin", content);
    mapped_file f(p);
    CHECK(f.path() == p);
    CHECK(f.size() == content.size());
    CHECK(f.bytes().size() == content.size());
    CHECK(as_string(f.bytes()) == content);
}

TEST_CASE("mapped_file of an empty file is an empty span", "[mapped_file]") {
    temp_dir tmp;
    mapped_file f(tmp.write("empty", ""));
    CHECK(f.size() == 0);
    CHECK(f.bytes().empty());
}

TEST_CASE("mapped_file keeps the bytes after the file is removed", "[mapped_file]") {
    temp_dir tmp;
    const fs::path p = tmp.write("gone", "still here");
    mapped_file f(p);
    fs::remove(p);
    CHECK(as_string(f.bytes()) == "still here");
}

TEST_CASE("mapped_file is movable", "[mapped_file]") {
    temp_dir tmp;
    const fs::path a = tmp.write("a", "AAAA");
    const fs::path b = tmp.write("b", "BB");
    mapped_file f(a);
    mapped_file g(std::move(f));
    CHECK(f.bytes().empty());  // NOLINT(bugprone-use-after-move): documented moved-from state
    CHECK(as_string(g.bytes()) == "AAAA");
    CHECK(g.path() == a);

    mapped_file h(b);
    h = std::move(g);  // unmaps b, takes a
    CHECK(as_string(h.bytes()) == "AAAA");
    CHECK(g.bytes().empty());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("mapped_file errors name the path and the OS reason", "[mapped_file]") {
    temp_dir tmp;

    SECTION("missing file") {
        const fs::path p = tmp.path / "does-not-exist.pth";
        const std::string msg = error_of([&] { mapped_file f(p); });
        CHECK(msg.rfind(p.string(), 0) == 0);
        CHECK_THAT(msg, Catch::Contains(std::strerror(ENOENT)));
    }
    SECTION("directory") {
        const std::string msg = error_of([&] { mapped_file f(tmp.path); });
        CHECK(msg.rfind(tmp.path.string(), 0) == 0);
        CHECK_THAT(msg, Catch::Contains(std::strerror(EISDIR)));
    }
    SECTION("unreadable file") {
        if (::geteuid() == 0) {
            WARN("running as root: permission bits do not stop reads, check skipped");
            return;
        }
        const fs::path p = tmp.write("secret", "x");
        fs::permissions(p, fs::perms::none);
        const std::string msg = error_of([&] { mapped_file f(p); });
        CHECK(msg.rfind(p.string(), 0) == 0);
        CHECK_THAT(msg, Catch::Contains(std::strerror(EACCES)));
    }
    SECTION("the error is also a std::runtime_error") {
        CHECK_THROWS_AS(mapped_file(tmp.path / "nope"), std::runtime_error);
    }
}
