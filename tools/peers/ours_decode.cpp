// This library's decode rate for the side-by-side campaign (tools/peer-campaign.sh), by the same
// protocol as rwkvcpp_decode.c: load with the file's own weight formats (Model<rwkv::stored>),
// 8 warm-up tokens, then N tokens timed (one forward each, no sampling). Prints tok/s.
//
//   ours_decode FILE THREADS N
#include <rwkv/model.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: ours_decode FILE THREADS N\n");
        return 2;
    }
    try {
        auto m = rwkv::Model<rwkv::stored>::load(argv[1]);
        m.set_threads(std::atoi(argv[2]));
        const int n = std::atoi(argv[3]);
        const int vocab = m.config().vocab_size;
        auto s = m.new_state();
        rwkv::token tok = 1;
        auto next = [&] { tok = static_cast<rwkv::token>((tok * 31 + 7) % vocab); };
        for (int i = 0; i < 8; ++i, next()) m.forward(tok, s);
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i, next()) m.forward(tok, s);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%.2f\n", n / dt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ours_decode: %s\n", e.what());
        return 1;
    }
}
