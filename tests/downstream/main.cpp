// A consumer of the installed package: loads a model and checks one greedy step.
#include <rwkv/model.hpp>

#include <algorithm>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    auto model = rwkv::Model<float>::load(argv[1]);
    auto state = model.new_state();
    const std::vector<rwkv::token> prompt{'T', 'h', 'e'};
    auto logits = model.forward(std::span<const rwkv::token>(prompt), state);
    auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    std::printf("layers %d, next token %ld\n", model.config().n_layer, static_cast<long>(best));
    return best >= 0 && best < model.config().vocab_size ? 0 : 1;
}
