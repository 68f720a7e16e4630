// rwkv-memory: resident memory of a loaded quantized model against its file size (issue 10's
// target: ≤ file size + 5 %). For each released shape asked for, a random model (same shapes and
// magnitudes as the release, Init::fast) is written with the library's GGUF writer in each type,
// then each file is loaded by Model<rwkv::stored> in a fresh child process, which decodes a few
// tokens and reports /proc/self/status against the figures it had before loading:
//
//   rwkv-memory [--shapes finch-0b4,eagle-0b4,finch-1b6] [--types q8_0,q4_0,q4_k_m] [--steps 8] [--dir /tmp]
//
// Columns (MiB, deltas over the child's own baseline, so neither the page cache nor the writer's
// heap counts): RSS = RssAnon + RssFile after loading and after the decode steps; "full use" =
// RssAnon after the steps + the in-place bytes of Model::memory(), i.e. what the process holds
// once every page it maps is resident (every embedding row used), which is the figure the target
// is about; peak = VmHWM during loading (converted copies are built before the file pages they
// came from are released). Linux only (/proc).

#include <rwkv/model.hpp>
#include <rwkv/quantize.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "shapes.hpp"

namespace {

struct status {
    double rss = 0, anon = 0, file = 0, hwm = 0;  // MiB
};

status read_status() {
    status s;
    std::ifstream f("/proc/self/status");
    std::string key;
    double kb = 0;
    std::string line;
    while (std::getline(f, line)) {
        std::istringstream in(line);
        if (!(in >> key >> kb)) continue;
        if (key == "VmRSS:") s.rss = kb / 1024;
        else if (key == "RssAnon:") s.anon = kb / 1024;
        else if (key == "RssFile:") s.file = kb / 1024;
        else if (key == "VmHWM:") s.hwm = kb / 1024;
    }
    return s;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

// Runs f in a child process; false when it failed.
template <class F>
bool in_child(F&& f) {
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        int rc = 0;
        try {
            rc = f();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "rwkv-memory: %s\n", e.what());
            rc = 1;
        }
        std::fflush(stdout);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

constexpr double mib = 1024.0 * 1024.0;

int measure(const std::filesystem::path& file, const std::string& label, int steps) {
    const double file_mib = static_cast<double>(std::filesystem::file_size(file)) / mib;
    const status before = read_status();
    auto m = rwkv::Model<rwkv::stored>::load(file);
    const status loaded = read_status();
    m.set_threads(1);
    auto s = m.new_state();
    for (int t = 0; t < steps; ++t) m.forward(static_cast<rwkv::token>((t * 7919) % m.config().vocab_size), s);
    const status used = read_status();
    const rwkv::MemoryUse& u = m.memory();
    const double rss_load = loaded.rss - before.rss, rss_used = used.rss - before.rss;
    const double full = (used.anon - before.anon) + static_cast<double>(u.in_place) / mib;
    std::printf(
        "| %s | %s | %.1f | %.1f | %.1f (anon %.1f, file %.1f) | %.1f | %.1f (%+.1f %%) | %.1f | %.1f / %.1f / "
        "%.1f |\n",
        label.c_str(), m.weight_type().c_str(), file_mib, rss_load, rss_used, used.anon - before.anon,
        used.file - before.file, static_cast<double>(u.released) / mib, full, 100.0 * (full / file_mib - 1.0),
        loaded.hwm - before.rss, static_cast<double>(u.in_place) / mib, static_cast<double>(u.copied) / mib,
        static_cast<double>(u.vectors) / mib);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string shapes = "finch-0b4", types = "q8_0,q4_0,q4_k_m";
    std::filesystem::path dir = std::filesystem::temp_directory_path();
    int steps = 8;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else if (a == "--steps" && i + 1 < argc) steps = std::stoi(argv[++i]);
        else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else {
            std::fprintf(stderr,
                         "usage: rwkv-memory [--shapes finch-0b4,eagle-0b4,finch-1b6] [--types q8_0,q4_0,q4_k_m] "
                         "[--steps N] [--dir DIR]\n");
            return 2;
        }
    }
    std::printf(
        "| model | weights | file MiB | RSS after load | RSS after %d tokens | released | full use "
        "(vs file) | peak during load | in place / copied / vectors |\n|---|---|---|---|---|---|---|---|---|\n",
        steps);
    for (const std::string& name : split(shapes)) {
        const bench::Shape* shape = name == "finch-0b4"   ? &bench::finch_0b4
                                    : name == "eagle-0b4" ? &bench::eagle_0b4
                                    : name == "finch-1b6" ? &bench::finch_1b6
                                                          : nullptr;
        if (!shape) {
            std::fprintf(stderr, "rwkv-memory: unknown shape '%s' (finch-0b4, eagle-0b4, finch-1b6)\n", name.c_str());
            return 2;
        }
        std::vector<std::filesystem::path> files;
        for (const std::string& t : split(types))
            files.push_back(dir / ("rwkv-memory-" + name + "-" + std::to_string(getpid()) + "-" + t + ".gguf"));
        // The writer's heap (an fp32 model, the encoded bytes) lives and dies in its own process.
        const bool written = in_child([&] {
            const auto tensors = rwkv::detail::random_tensors<float>(bench::config_of(*shape), 1, rwkv::Init::fast);
            std::size_t k = 0;
            for (const std::string& t : split(types)) {
                rwkv::QuantizeOptions o;
                o.type = t;
                rwkv::write_gguf(tensors, files[k++], o);
            }
            return 0;
        });
        for (std::size_t k = 0; k < files.size() && written; ++k) {
            const std::string label = std::string(shape->name) + " " + split(types)[k];
            in_child([&] { return measure(files[k], label, steps); });
        }
        for (const auto& f : files) std::filesystem::remove(f);
        if (!written) return 1;
    }
    return 0;
}
