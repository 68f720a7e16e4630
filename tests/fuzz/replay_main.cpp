// Replays fuzz inputs through a harness without libFuzzer, so every normal build (gcc included)
// runs the corpus and the crash reproducers: `fuzz_<name>_replay PATH...` calls
// LLVMFuzzerTestOneInput once per file (folders are walked recursively; missing paths are
// skipped, since fixture-derived seeds exist only where the fixtures do). A crash, sanitizer
// report or escaped exception fails the test; exit status 1 if no input was found at all.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool run_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", p.c_str());
        return false;
    }
    // Copied into an exactly-sized heap buffer, as libFuzzer does, so ASan sees overreads.
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    std::vector<std::uint8_t> buf(bytes.begin(), bytes.end());
    static std::uint8_t empty = 0;  // libFuzzer never passes a null pointer
    LLVMFuzzerTestOneInput(buf.empty() ? &empty : buf.data(), buf.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    std::size_t n = 0;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path root = argv[i];
        std::error_code ec;
        if (std::filesystem::is_regular_file(root, ec)) {
            n += run_file(root);
        } else if (std::filesystem::is_directory(root, ec)) {
            std::vector<std::filesystem::path> files;
            for (const auto& e : std::filesystem::recursive_directory_iterator(root))
                if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
            std::sort(files.begin(), files.end());
            for (const auto& f : files) n += run_file(f);
        }
    }
    std::printf("replayed %zu inputs\n", n);
    return n > 0 ? 0 : 1;
}
