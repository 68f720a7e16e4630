// rwkv::io::mapped_file: read-only POSIX mapping with errors that name the path.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>

#include "byte_string.hpp"
#include "errors.hpp"
#include "rwkv/io/mapped_file.hpp"
#include "temp_files.hpp"

namespace fs = std::filesystem;
using rwkv::io::mapped_file;
using test_support::error_of;
using test_support::str_of;
using test_support::temp_dir;

static_assert(!std::is_copy_constructible_v<mapped_file>);
static_assert(!std::is_copy_assignable_v<mapped_file>);
static_assert(std::is_nothrow_move_constructible_v<mapped_file>);
static_assert(std::is_nothrow_move_assignable_v<mapped_file>);

TEST_CASE("mapped_file maps a file's bytes read-only", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    std::string content = "hello, mapped world";
    content.push_back('\0');
    content += "\xff\x01 tail";
    const fs::path p = tmp.write("a.bin", content);
    mapped_file f(p);
    CHECK(f.path() == p);
    CHECK(f.size() == content.size());
    CHECK(f.bytes().size() == content.size());
    CHECK(str_of(f.bytes()) == content);
}

TEST_CASE("mapped_file of an empty file is an empty span", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    mapped_file f(tmp.write("empty", ""));
    CHECK(f.size() == 0);
    CHECK(f.bytes().empty());
}

TEST_CASE("mapped_file keeps the bytes after the file is removed", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    const fs::path p = tmp.write("gone", "still here");
    mapped_file f(p);
    fs::remove(p);
    CHECK(str_of(f.bytes()) == "still here");
}

TEST_CASE("mapped_file is movable", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    const fs::path a = tmp.write("a", "AAAA");
    const fs::path b = tmp.write("b", "BB");
    mapped_file f(a);
    mapped_file g(std::move(f));
    CHECK(f.bytes().empty());  // NOLINT(bugprone-use-after-move): documented moved-from state
    CHECK(str_of(g.bytes()) == "AAAA");
    CHECK(g.path() == a);

    mapped_file h(b);
    h = std::move(g);  // unmaps b, takes a
    CHECK(str_of(h.bytes()) == "AAAA");
    CHECK(g.bytes().empty());  // NOLINT(bugprone-use-after-move)
}

TEST_CASE("mapped_file::release_except drops whole pages outside the kept ranges, contents intact", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::string content(page * 5 + 100, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 31 % 251);
    mapped_file f(tmp.write("pages.bin", content));
    const auto all = f.bytes();
    CHECK(str_of(all) == content);  // every page resident
    // Keep bytes inside page 1 (a sliver) and from the middle of page 3 into page 4: pages 1, 3
    // and 4 stay; pages 0 and 2 and the last, partial page 5 go.
    const std::size_t released = f.release_except({all.subspan(page + 10, 20), all.subspan(3 * page + 7, page)});
    CHECK(released == 3 * page);
    CHECK(str_of(f.bytes()) == content);  // paged in again from the file
    CHECK(f.release_except({}) == 6 * page);
    CHECK(f.release_except({all}) == 0);
    CHECK(str_of(f.bytes()) == content);
    mapped_file empty(tmp.write("empty.bin", ""));
    CHECK(empty.release_except({}) == 0);
}

TEST_CASE("mapped_file::release drops the whole pages inside a range, contents intact", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::string content(page * 5 + 100, '\0');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 37 % 241);
    mapped_file f(tmp.write("pages.bin", content));
    const auto all = f.bytes();
    CHECK(str_of(all) == content);
    CHECK(f.release(all.subspan(10, page)) == 0);                       // inside pages 0 and 1: no whole page
    CHECK(f.release(all.subspan(page - 1, 2 * page + 2)) == 2 * page);  // pages 1 and 2
    CHECK(f.release(all.subspan(4 * page)) == 2 * page);                // page 4 and the last, partial page 5
    CHECK(f.release(all) == 6 * page);
    CHECK(f.release({}) == 0);
    const std::string other(page * 2, 'x');  // not in the mapping
    CHECK(f.release(std::as_bytes(std::span(other.data(), other.size()))) == 0);
    CHECK(str_of(f.bytes()) == content);  // paged in again from the file
}

TEST_CASE("mapped_file errors name the path and the OS reason", "[mapped_file]") {
    temp_dir tmp("rwkv-mapped-file-test");

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
