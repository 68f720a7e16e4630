// rwkv-memory: resident memory of a loaded quantized model against its file size (issue 10's
// target: ≤ file size + 5 %). For each released shape asked for, a random model (same shapes and
// magnitudes as the release, Init::fast) is written with the library's GGUF writer in each type,
// then each file is loaded by Model<rwkv::stored> in a fresh child process, which decodes a few
// tokens and reports /proc/self/status against the figures it had before loading:
//
//   rwkv-memory [--shapes finch-0b4,eagle-0b4,finch-1b6] [--types q8_0,q4_0,q4_k_m|none]
//               [--on-load q8_0,q4_0,q4_k,...|none] [--steps 8] [--dir /tmp] [--detail]
//
// Columns (MiB, deltas over the child's own baseline, so neither the page cache nor the writer's
// heap counts): RSS = RssAnon + RssFile after loading and after the decode steps; "full use" =
// RssAnon after the steps + the in-place bytes of Model::memory(), i.e. what the process holds
// once every page it maps is resident (every embedding row used), which is the figure the target
// is about; peak = VmHWM during loading (the loader lets each copied tensor's file pages go as
// soon as it has copied them, and every other page it read at the end). Linux only (/proc).
//
// Quantize on load (--on-load q8_0,q4_0; "none" skips it): the same random model as a bf16
// safetensors file (official names, mapped like a BlinkDL .pth) and as bf16 tensors in memory
// (what Model<T>::random hands the loader), each loaded as Model<rwkv::q8_0> / ... in a fresh
// child. Nothing is then used in place, so the target is about the model's own bytes: resident
// (RssAnon + RssFile after the steps, over the baseline) ≤ (quantized matrices + LoRA matrices +
// fp32 vectors, i.e. copied + vectors of Model::memory()) + 5 %. For the in-memory source the
// baseline is taken before the tensors are made, so whatever the generation or the loader leaves
// behind counts. --detail adds /proc/self/smaps_rollup and glibc's heap figures after loading.

#include <rwkv/model.hpp>
#include <rwkv/quantize.hpp>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
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

bool detail = false;  // --detail

// What the process holds after loading, by kind (stderr): smaps_rollup and glibc's heap.
void print_detail(const std::string& label) {
    std::string out;
    std::ifstream f("/proc/self/smaps_rollup");
    for (std::string line; std::getline(f, line);)
        for (const char* k : {"Rss:", "Anonymous:", "Private_Clean:", "Private_Dirty:", "Shared_Clean:"})
            if (line.rfind(k, 0) == 0) {
                std::istringstream in(line.substr(std::strlen(k)));
                double kb = 0;
                in >> kb;
                char buf[64];
                std::snprintf(buf, sizeof buf, " %s %.1f", k, kb / 1024);
                out += buf;
            }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    const struct mallinfo2 mi = ::mallinfo2();
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  " | malloc: heap %.1f (in use %.1f, free %.1f, top %.1f), mmapped %.1f in %zu blocks",
                  static_cast<double>(mi.arena) / mib, static_cast<double>(mi.uordblks) / mib,
                  static_cast<double>(mi.fordblks) / mib, static_cast<double>(mi.keepcost) / mib,
                  static_cast<double>(mi.hblkhd) / mib, mi.hblks);
    out += buf;
#endif
    std::fprintf(stderr, "rwkv-memory: %s after load, MiB:%s\n", label.c_str(), out.c_str());
}

// `f` (tensors in memory) as a safetensors file: official names, so io::open reads it like a
// BlinkDL checkpoint (mapped, zero copy).
void write_safetensors(const rwkv::io::tensor_file& f, const std::filesystem::path& path) {
    std::string header = "{";
    std::uint64_t off = 0;
    for (const auto& t : f.tensors) {
        const char* dt = t.type == rwkv::dtype::bf16 ? "BF16" : t.type == rwkv::dtype::f16 ? "F16" : "F32";
        if (header.size() > 1) header += ',';
        header.append("\"").append(t.name).append("\":{\"dtype\":\"").append(dt).append("\",\"shape\":[");
        for (std::size_t d = 0; d < t.shape.size(); ++d) {
            if (d) header += ',';
            header.append(std::to_string(t.shape[d]));
        }
        header.append("],\"data_offsets\":[").append(std::to_string(off)).append(",");
        off += t.data.size();
        header.append(std::to_string(off)).append("]}");
    }
    header += "}";
    while (header.size() % 8) header += ' ';  // data 8-aligned
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);  // little-endian hosts (x86-64, aarch64)
    out << header;
    for (const auto& t : f.tensors)
        out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    if (!out) throw rwkv::error(path.string() + ": write failed");
}

// Quantize on load: Model<P> from the tensors `source` makes (after the baseline is read).
template <class P, class Source>
int measure_on_load(Source&& source, const std::string& label, const std::string& from, double source_mib, int steps) {
    const status before = read_status();
    auto m = rwkv::Model<P>::from_tensors(source());
    const status loaded = read_status();
    if (detail) print_detail(label + " from " + from);
    m.set_threads(1);
    auto s = m.new_state();
    for (int t = 0; t < steps; ++t) m.forward(static_cast<rwkv::token>((t * 7919) % m.config().vocab_size), s);
    const status used = read_status();
    const rwkv::MemoryUse& u = m.memory();
    const double weights = static_cast<double>(u.in_place + u.copied + u.vectors) / mib;
    // Resident once every page is in use: anon + the file pages still held (or every in-place
    // byte, when more).
    const double anon = used.anon - before.anon, file = used.file - before.file;
    const double full = anon + std::max(file, static_cast<double>(u.in_place) / mib);
    std::printf(
        "| %s | %s | %s | %.1f | %.1f | %.1f (anon %.1f, file %.1f) | %.1f | %.1f | %.1f (%+.1f %%) | %.1f | "
        "%.1f / %.1f / %.1f |\n",
        label.c_str(), from.c_str(), m.weight_type().c_str(), source_mib, loaded.rss - before.rss,
        used.rss - before.rss, anon, file, static_cast<double>(u.released) / mib, weights, full,
        100.0 * (full / weights - 1.0), loaded.hwm - before.rss, static_cast<double>(u.in_place) / mib,
        static_cast<double>(u.copied) / mib, static_cast<double>(u.vectors) / mib);
    return 0;
}

// Calls f(P{}) for the weight-format policy named t (false when there is none).
template <class F>
bool with_policy(const std::string& t, F&& f) {
    if (t == "q8_0") return f(rwkv::q8_0{}), true;
    if (t == "q4_0") return f(rwkv::q4_0{}), true;
    if (t == "q4_1") return f(rwkv::q4_1{}), true;
    if (t == "q5_0") return f(rwkv::q5_0{}), true;
    if (t == "q5_1") return f(rwkv::q5_1{}), true;
    if (t == "q4_k") return f(rwkv::q4_k{}), true;
    if (t == "q5_k") return f(rwkv::q5_k{}), true;
    if (t == "q6_k") return f(rwkv::q6_k{}), true;
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    std::string shapes = "finch-0b4", types = "q8_0,q4_0,q4_k_m", on_load = "q8_0,q4_0";
    std::filesystem::path dir = std::filesystem::temp_directory_path();
    int steps = 8;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--shapes" && i + 1 < argc) shapes = argv[++i];
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else if (a == "--on-load" && i + 1 < argc) on_load = argv[++i];
        else if (a == "--steps" && i + 1 < argc) {
            // Whole number in [1, 1e6]: std::stoi would abort on "x" and accept "8x" or negatives.
            const std::string v = argv[++i];
            const auto r = std::from_chars(v.data(), v.data() + v.size(), steps);
            if (r.ec != std::errc{} || r.ptr != v.data() + v.size() || steps < 1 || steps > 1'000'000) {
                std::fprintf(stderr, "rwkv-memory: --steps expects an integer in [1, 1000000], got '%s'\n", v.c_str());
                return 2;
            }
        } else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
        else if (a == "--detail") detail = true;
        else {
            const bool help = a == "--help" || a == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: rwkv-memory [--shapes finch-0b4,eagle-0b4,finch-1b6] [--types q8_0,q4_0,q4_k_m|none] "
                         "[--on-load q8_0,q4_0,q4_1,q5_0,q5_1,q4_k,q5_k,q6_k|none] [--steps N] [--dir DIR] "
                         "[--detail]\n");
            return help ? 0 : 2;
        }
    }
    if (types == "none") types.clear();
    if (on_load == "none") on_load.clear();
    for (const std::string& t : split(on_load))
        if (!with_policy(t, [](auto) {})) {
            std::fprintf(stderr, "rwkv-memory: --on-load: unknown type '%s'\n", t.c_str());
            return 2;
        }
    std::vector<std::string> stored_rows, on_load_rows;  // printed per table once every shape ran
    for (const std::string& name : split(shapes)) {
        const bench::Shape* shape = name == "finch-0b4"   ? &bench::finch_0b4
                                    : name == "eagle-0b4" ? &bench::eagle_0b4
                                    : name == "finch-1b6" ? &bench::finch_1b6
                                                          : nullptr;
        if (!shape) {
            std::fprintf(stderr, "rwkv-memory: unknown shape '%s' (finch-0b4, eagle-0b4, finch-1b6)\n", name.c_str());
            return 2;
        }
        const rwkv::Config config = bench::config_of(*shape);
        const std::string stem = "rwkv-memory-" + name + "-" + std::to_string(getpid());
        std::vector<std::filesystem::path> files;
        for (const std::string& t : split(types)) files.push_back(dir / (stem + "-" + t + ".gguf"));
        const std::filesystem::path bf16_file = dir / (stem + "-bf16.safetensors");
        // The writer's heap (an fp32 model, the encoded bytes) lives and dies in its own process.
        const bool written = in_child([&] {
            if (!files.empty()) {
                const auto tensors = rwkv::detail::random_tensors<float>(config, 1, rwkv::Init::fast);
                std::size_t k = 0;
                for (const std::string& t : split(types)) {
                    rwkv::QuantizeOptions o;
                    o.type = t;
                    rwkv::write_gguf(tensors, files[k++], o);
                }
            }
            if (!on_load.empty())
                write_safetensors(rwkv::detail::random_tensors<rwkv::bfloat16>(config, 1, rwkv::Init::fast), bf16_file);
            return 0;
        });
        // Each child writes its table row to a file of its own, read back here, so that the two
        // tables print whole after every shape has run.
        const std::filesystem::path rows = dir / (stem + ".rows");
        auto run = [&](auto&& f) {
            std::fflush(stdout);
            const bool ok = in_child([&] {
                if (!std::freopen(rows.c_str(), "w", stdout)) return 1;
                return f();
            });
            std::ifstream in(rows);
            std::string line;
            std::getline(in, line);
            std::filesystem::remove(rows);
            return ok ? line : std::string();
        };
        for (std::size_t k = 0; k < files.size() && written; ++k) {
            const std::string label = std::string(shape->name) + " " + split(types)[k];
            stored_rows.push_back(run([&] { return measure(files[k], label, steps); }));
        }
        const double bf16_mib =
            std::filesystem::exists(bf16_file) ? static_cast<double>(std::filesystem::file_size(bf16_file)) / mib : 0;
        for (const std::string& t : written ? split(on_load) : std::vector<std::string>{}) {
            with_policy(t, [&](auto policy) {
                using P = decltype(policy);
                on_load_rows.push_back(run([&] {
                    return measure_on_load<P>([&] { return rwkv::io::open(bf16_file); }, shape->name,
                                              "bf16 safetensors", bf16_mib, steps);
                }));
                on_load_rows.push_back(run([&] {
                    return measure_on_load<P>(
                        [&] { return rwkv::detail::random_tensors<rwkv::bfloat16>(config, 1, rwkv::Init::fast); },
                        shape->name, "bf16 in memory", bf16_mib, steps);
                }));
            });
        }
        for (const auto& f : files) std::filesystem::remove(f);
        std::filesystem::remove(bf16_file);
        if (!written) return 1;
    }
    if (!stored_rows.empty()) {
        std::printf(
            "| model | weights | file MiB | RSS after load | RSS after %d tokens | released | full use "
            "(vs file) | peak during load | in place / copied / vectors |\n|---|---|---|---|---|---|---|---|---|\n",
            steps);
        for (const auto& r : stored_rows) std::printf("%s\n", r.empty() ? "| (failed) |" : r.c_str());
    }
    if (!on_load_rows.empty()) {
        std::printf(
            "%s| model | from | weights | source MiB | RSS after load | RSS after %d tokens | released | "
            "quantized + LoRA + vectors | resident (vs those) | peak during load | in place / copied / vectors |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n",
            stored_rows.empty() ? "" : "\n", steps);
        for (const auto& r : on_load_rows) std::printf("%s\n", r.empty() ? "| (failed) |" : r.c_str());
    }
    return 0;
}
