#pragma once
// Config and Version: the shape of a model. Loaders infer it from tensor shapes (never from a
// file name); researchers fill it in by hand for Model<T>::random().

#include <cstdint>
#include <string>

#include "error.hpp"

namespace rwkv {

enum class Version : std::uint8_t {
    x052,  // RWKV-5.2 "Eagle": static per-channel decay
    x060,  // RWKV-6.0 "Finch": data-dependent token shift and decay
};

inline const char* version_name(Version v) {
    return v == Version::x052 ? "x052 (RWKV-5.2 Eagle)" : "x060 (RWKV-6.0 Finch)";
}

struct Config {
    Version version = Version::x060;
    int n_layer = 0;
    int n_embd = 0;           // C
    int n_head = 0;           // H = dim_att / head_size (derived by finalize() when 0)
    int head_size = 64;       // N
    int dim_att = 0;          // A (0: = n_embd)
    int dim_ffn = 0;          // F (0: the training default int(3.5 C) / 32 * 32)
    int vocab_size = 0;       // V
    int dim_lora_mix = 32;    // Dm, x060 token-shift LoRA rank per slot (64 for C = 4096 releases)
    int dim_lora_decay = 64;  // Dw, x060 decay LoRA rank (128 for C = 4096 releases)

    // Fills the derived fields and checks the shape; throws rwkv::error naming the bad field.
    Config& finalize() {
        if (dim_att == 0) dim_att = n_embd;
        if (dim_ffn == 0) dim_ffn = static_cast<int>(3.5 * n_embd) / 32 * 32;
        if (head_size > 0 && n_head == 0) n_head = dim_att / head_size;
        validate();
        return *this;
    }

    void validate() const {
        auto need = [](bool ok, const std::string& what) {
            if (!ok) throw error("invalid model config: " + what);
        };
        need(n_layer > 0, "n_layer = " + std::to_string(n_layer) + " must be > 0");
        need(n_embd > 0, "n_embd = " + std::to_string(n_embd) + " must be > 0");
        need(vocab_size > 0, "vocab_size = " + std::to_string(vocab_size) + " must be > 0");
        need(head_size > 0, "head_size = " + std::to_string(head_size) + " must be > 0");
        need(dim_att > 0 && dim_ffn > 0, "dim_att and dim_ffn must be > 0");
        need(n_head > 0 && n_head * head_size == dim_att, "n_head (" + std::to_string(n_head) + ") x head_size (" +
                                                              std::to_string(head_size) + ") must equal dim_att (" +
                                                              std::to_string(dim_att) + ")");
        if (version == Version::x060) need(dim_lora_mix > 0 && dim_lora_decay > 0, "x060 LoRA ranks must be > 0");
    }

    friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace rwkv
