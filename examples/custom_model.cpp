// Research example: build a custom-sized Finch (x060) in code with the official
// initialisation, run a token sequence through it, and inspect the recurrent state.

#include <rwkv/model.hpp>

#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

int main() {
    rwkv::Config config;
    config.version = rwkv::Version::x060;
    config.n_layer = 6;
    config.n_embd = 256;
    config.head_size = 32;  // 8 heads
    config.dim_ffn = 0;     // 0 = the training default, int(3.5 * C) / 32 * 32 = 896
    config.vocab_size = 1024;
    config.dim_lora_mix = 16;
    config.dim_lora_decay = 32;

    const auto model = rwkv::Model<float>::random(config, /*seed=*/2024);
    const auto& c = model.config();
    std::printf("Finch L%d C%d H%d N%d F%d V%d, LoRA %d/%d\n", c.n_layer, c.n_embd, c.n_head, c.head_size, c.dim_ffn,
                c.vocab_size, c.dim_lora_mix, c.dim_lora_decay);

    std::vector<rwkv::token> tokens(100);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<rwkv::token>((i * 37 + 11) % 1024);

    auto state = model.new_state();
    const auto logits = model.forward(std::span<const rwkv::token>(tokens), state);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    std::printf("after %zu tokens: next-token argmax %ld (logit %.4f)\n", tokens.size(), static_cast<long>(best),
                static_cast<double>(logits[static_cast<std::size_t>(best)]));

    auto norm = [](std::span<const float> v) {
        return std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0));
    };
    std::printf("layer  |att shift|  |wkv state|  |ffn shift|\n");
    for (int l = 0; l < c.n_layer; ++l)
        std::printf("%5d  %11.4f  %11.4f  %11.4f\n", l, norm(state.att_shift(l)), norm(state.wkv(l)),
                    norm(state.ffn_shift(l)));
    return 0;
}
