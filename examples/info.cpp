// rwkv-info FILE: what a checkpoint holds — format, generation, shapes, per-tensor types,
// parameter count, bytes, vocabulary source — for any file io::open reads (by content).
//
//   rwkv-info model.gguf
//   rwkv-info --tensors RWKV-x060-World-1B6.pth     (also list every tensor)

#include <rwkv/checkpoint.hpp>
#include <rwkv/io/open.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "cli_args.hpp"

namespace {

constexpr const char* usage = "usage: rwkv-info [--tensors] FILE|FOLDER";

void print_help() {
    std::printf(
        "%s\n"
        "Describes a checkpoint: format, generation, shapes, per-tensor types, parameter count, bytes and\n"
        "where the vocabulary comes from. Reads every format the library loads (.pth, safetensors or a\n"
        "Hugging Face folder, GGUF, rwkv.cpp .bin), recognised by content.\n\n"
        "      --tensors             also list every tensor (name, type, shape)\n"
        "  -h, --help                this text\n"
        "      --version             the library version\n",
        usage);
}

}  // namespace

int main(int argc, char** argv) {
    bool list = false;
    std::string path;
    try {
        cli::Args a(argc, argv);
        while (a.next()) {
            const std::string& f = a.flag();
            if (a.positional()) {
                if (!path.empty()) throw cli::usage_error("one FILE at a time, got '" + path + "' and '" + f + "'");
                path = f;
            } else if (f == "--tensors") list = true;
            else if (f == "-h" || f == "--help") {
                print_help();
                return 0;
            } else if (f == "--version") {
                std::printf("rwkv-info (rwkv %s)\n", RWKV_VERSION_STRING);
                return 0;
            } else throw cli::usage_error("unknown argument '" + f + "'");
        }
        if (path.empty()) throw cli::usage_error("no FILE given");
    } catch (const cli::usage_error& e) {
        std::fprintf(stderr, "rwkv-info: error: %s\n%s   (see --help)\n", e.what(), usage);
        return 2;
    }
    try {
        const rwkv::io::tensor_file f = rwkv::io::open(path);
        std::printf("file:        %s\nformat:      %s\n", path.c_str(), f.format.c_str());
        bool vocab = false;
        for (const auto& [k, v] : f.metadata) {
            std::printf("  %-22s %s\n", (k + ":").c_str(), v.c_str());
            vocab = vocab || k == "vocabulary";
        }
        int vocab_size = 0;  // from the shapes, when the file is a model this library runs
        try {
            const rwkv::Config c = rwkv::detail::infer_config(f);
            vocab_size = c.vocab_size;
            std::printf("generation:  %s\n", rwkv::version_name(c.version));
            std::printf("shape:       L %d, C %d, A %d, H %d x N %d, F %d, V %d", c.n_layer, c.n_embd, c.dim_att,
                        c.n_head, c.head_size, c.dim_ffn, c.vocab_size);
            if (c.version == rwkv::Version::x060) std::printf(", LoRA Dm %d, Dw %d", c.dim_lora_mix, c.dim_lora_decay);
            std::printf("\n");
        } catch (const rwkv::error& e) {
            std::printf("generation:  not runnable by this library: %s\n", e.what());
        }
        // A model of at most 256 rows is byte-level (ids are bytes; the programs need no vocabulary);
        // a larger one needs the World vocabulary (or another of its size) given with --vocab.
        if (!vocab && vocab_size > 0 && vocab_size <= 256)
            std::printf("vocabulary:  none needed (byte-level: %d ids, one per byte value)\n", vocab_size);
        else if (!vocab)
            std::printf("vocabulary:  none in file (pass one with --vocab, e.g. rwkv_vocab_v20230424.txt)\n");
        std::int64_t params = 0;
        std::size_t bytes = 0;
        std::map<std::string, std::pair<int, std::int64_t>> by_type;  // type → (tensors, values)
        for (const auto& t : f.tensors) {
            params += t.numel();
            bytes += t.data.size();
            auto& e = by_type[std::string(rwkv::dtype_name(t.type))];
            ++e.first;
            e.second += t.numel();
        }
        std::printf("tensors:     %zu, %lld parameters, %zu bytes of weights (%.2f bits/parameter)\n", f.tensors.size(),
                    static_cast<long long>(params), bytes,
                    params ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0);
        for (const auto& [type, e] : by_type)
            std::printf("  %-8s %4d tensors, %lld values\n", type.c_str(), e.first, static_cast<long long>(e.second));
        if (list)
            for (const auto& t : f.tensors) {
                std::string shape;
                for (std::size_t i = 0; i < t.shape.size(); ++i) shape += (i ? " x " : "") + std::to_string(t.shape[i]);
                std::printf("  %-40s %-7s [%s]%s\n", t.name.c_str(), std::string(rwkv::dtype_name(t.type)).c_str(),
                            shape.c_str(), t.owner ? " (converted)" : "");
            }
        return 0;
    } catch (const std::exception& e) {  // rwkv::error (an unreadable or malformed file), or out of memory
        std::fprintf(stderr, "rwkv-info: error: %s\n", e.what());
        return 1;
    }
}
