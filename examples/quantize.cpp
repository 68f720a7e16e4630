// rwkv-quantize IN OUT TYPE: any checkpoint this library reads (.pth, safetensors / HF folder,
// GGUF, rwkv.cpp .bin; recognised by content) → a GGUF v3 file. x060 is written with llama.cpp's
// `rwkv6` names and metadata (llama.cpp reads it); x052 with this library's `rwkv5` names
// (docs/gguf-rwkv5.md). TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k.
//
//   rwkv-quantize RWKV-x060-World-1B6.pth finch-1b6-q4_k_m.gguf q4_k_m --vocab rwkv_vocab_v20230424.txt
//
// --pure: every big matrix in TYPE (no higher-precision head / value matrices), so the file
// reloads bit-identical to Model<TYPE> quantizing on load. --vocab FILE: the World vocabulary to
// embed (a GGUF input's own vocabulary is copied without it). --name NAME: general.name.

#include <rwkv/io/gguf.hpp>
#include <rwkv/io/open.hpp>
#include <rwkv/quantize.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "cli_args.hpp"

namespace {

constexpr const char* usage = "usage: rwkv-quantize [--pure] [--vocab FILE] [--name NAME] IN OUT TYPE";

std::string type_list() {
    std::string types;
    for (const auto& t : rwkv::quantize_types()) types += (types.empty() ? "" : " ") + t;
    return types;
}

void print_help() {
    std::printf(
        "%s\n"
        "Writes any checkpoint this library reads (.pth, safetensors or a Hugging Face folder, GGUF, rwkv.cpp\n"
        ".bin; recognised by content) as a GGUF v3 file whose big matrices are in TYPE. x060 uses llama.cpp's\n"
        "rwkv6 names (llama.cpp reads it), x052 this library's rwkv5 names (docs/gguf-rwkv5.md).\n\n"
        "  IN                        the checkpoint to convert\n"
        "  OUT                       the GGUF file to write (checked first)\n"
        "  TYPE                      %s\n"
        "                            (q4_k_m / q5_k_m keep some value matrices in more bits, like llama.cpp)\n"
        "      --pure                every big matrix in TYPE, so the file reloads bit-identical to Model<TYPE>\n"
        "      --vocab FILE          World vocabulary to embed (rwkv_vocab_v20230424.txt); a GGUF input's own\n"
        "                            vocabulary is kept without it\n"
        "      --name NAME           general.name in the file\n"
        "  -h, --help                this text\n"
        "      --version             the library version\n",
        usage, type_list().c_str());
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> pos;
    rwkv::QuantizeOptions opt;
    std::string vocab_path;
    try {
        cli::Args a(argc, argv);
        while (a.next()) {
            const std::string& f = a.flag();
            if (a.positional()) pos.push_back(f);
            else if (f == "--pure") opt.pure = true;
            else if (f == "--vocab") vocab_path = a.value();
            else if (f == "--name") opt.name = a.value();
            else if (f == "-h" || f == "--help") {
                print_help();
                return 0;
            } else if (f == "--version") {
                std::printf("rwkv-quantize (rwkv %s)\n", RWKV_VERSION_STRING);
                return 0;
            } else throw cli::usage_error("unknown argument '" + f + "'");
        }
        if (pos.size() != 3)
            throw cli::usage_error("expected IN OUT TYPE, got " + std::to_string(pos.size()) + " operand" +
                                   (pos.size() == 1 ? "" : "s"));
        const auto& types = rwkv::quantize_types();
        if (std::find(types.begin(), types.end(), pos[2]) == types.end())
            throw cli::usage_error("unknown TYPE '" + pos[2] + "'; supported: " + type_list());
        // Before reading a large checkpoint: a missing output folder fails now, not after the work.
        std::error_code ec;
        if (std::filesystem::equivalent(pos[0], pos[1], ec))
            throw cli::usage_error("OUT '" + pos[1] + "' is the input file; write to another path");
        cli::check_writable(pos[1], "OUT");
    } catch (const cli::usage_error& e) {
        std::fprintf(stderr, "rwkv-quantize: error: %s\n%s   (see --help)\n", e.what(), usage);
        return 2;
    }
    try {
        std::optional<rwkv::WorldTokenizer> vocab;
        if (!vocab_path.empty()) vocab.emplace(std::filesystem::path(vocab_path));
        const rwkv::io::tensor_file in = rwkv::io::open(pos[0]);
        if (vocab) opt.vocab = &*vocab;
        else if (in.format.rfind("GGUF", 0) == 0) {  // keep a GGUF's own vocabulary as stored
            const rwkv::io::gguf_file g = rwkv::io::read_gguf(pos[0]);
            if (const auto* t = g.find("tokenizer.ggml.tokens");
                t && g.string_or("tokenizer.ggml.model", "") == "rwkv") {
                opt.vocab_tokens = t->strings;
                if (const auto* ty = g.find("tokenizer.ggml.token_type"); ty && ty->ints.size() == t->strings.size())
                    for (auto v : ty->ints) opt.vocab_types.push_back(static_cast<std::int32_t>(v));
                else opt.vocab_types.assign(t->strings.size(), 1);
            }
        }
        opt.type = pos[2];
        rwkv::write_gguf(in, pos[1], opt);
        std::printf("%s -> %s (%s%s%s)\n", pos[0].c_str(), pos[1].c_str(), opt.type.c_str(), opt.pure ? ", pure" : "",
                    opt.vocab || !opt.vocab_tokens.empty() ? ", with vocabulary" : "");
    } catch (const std::exception& e) {  // rwkv::error (an unreadable or malformed file), or out of memory
        std::fprintf(stderr, "rwkv-quantize: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
