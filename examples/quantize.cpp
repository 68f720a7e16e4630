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

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
    std::vector<std::string> pos;
    rwkv::QuantizeOptions opt;
    std::string vocab_path;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--pure") opt.pure = true;
        else if (a == "--vocab" && i + 1 < argc) vocab_path = argv[++i];
        else if (a == "--name" && i + 1 < argc) opt.name = argv[++i];
        else pos.emplace_back(a);
    }
    if (pos.size() != 3) {
        std::string types;
        for (const auto& t : rwkv::quantize_types()) types += " " + t;
        std::fprintf(stderr, "usage: rwkv-quantize [--pure] [--vocab FILE] [--name NAME] IN OUT TYPE\n  TYPE:%s\n",
                     types.c_str());
        return 2;
    }
    try {
        const rwkv::io::tensor_file in = rwkv::io::open(pos[0]);
        std::optional<rwkv::WorldTokenizer> vocab;
        if (!vocab_path.empty()) {
            vocab.emplace(std::filesystem::path(vocab_path));
            opt.vocab = &*vocab;
        } else if (in.format.rfind("GGUF", 0) == 0) {  // keep a GGUF's own vocabulary as stored
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
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rwkv-quantize: %s\n", e.what());
        return 1;
    }
    return 0;
}
