// rwkv-perplexity: quality of each weight format on held-out text, in nats per byte, for byte-level
// models (token id = byte value): the model is loaded once per format (Model<format> quantizes on
// load, exactly as a GGUF of that type reloads) and scored with teacher forcing over the text.
//
//   rwkv-perplexity MODEL TEXT [--bytes N] [--utf16le] [--types f32,bf16,q8_0,...]
//
// --utf16le feeds every byte followed by 0x00 (tiny-rwkv-6v0-1m was trained that way, see
// fixtures/tiny/README.md) and still divides by the text's bytes. Formats whose blocks do not fit
// the model's rows (K-quants need 256 columns) print "n/a". A block format with the suffix "+i8"
// (q4_0+i8, ...) is scored with the opt-in int8 activations (Model::set_int8_activations), which
// affect decoding only, so those are fed one token at a time (the others in one forward_all).

#include <rwkv/model.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

template <class T>
double nats_per_byte(const std::string& path, const std::vector<rwkv::token>& ids, std::size_t text_bytes,
                     bool int8 = false) {
    auto m = rwkv::Model<T>::load(path);
    const auto V = static_cast<std::size_t>(m.config().vocab_size);
    std::vector<float> logits(ids.size() * V);
    auto s = m.new_state();
    if (int8) {  // decoding only: one token at a time
        m.set_int8_activations(true);
        for (std::size_t t = 0; t < ids.size(); ++t) {
            const auto lg = m.forward(ids[t], s);
            std::copy(lg.begin(), lg.end(), logits.begin() + static_cast<std::ptrdiff_t>(t * V));
        }
    } else {
        m.forward_all(ids, s, logits);
    }
    double nll = 0.0;
    for (std::size_t t = 0; t + 1 < ids.size(); ++t) {  // logits row t predicts token t + 1
        const float* l = logits.data() + t * V;
        double mx = l[0];
        for (std::size_t i = 1; i < V; ++i) mx = std::max(mx, static_cast<double>(l[i]));
        double z = 0.0;
        for (std::size_t i = 0; i < V; ++i) z += std::exp(static_cast<double>(l[i]) - mx);
        nll += mx + std::log(z) - static_cast<double>(l[static_cast<std::size_t>(ids[t + 1])]);
    }
    return nll / static_cast<double>(text_bytes - 1);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> pos;
    std::size_t max_bytes = 4096;
    bool utf16 = false;
    std::string types = "f32,bf16,f16,q8_0,q6_k,q5_k,q5_1,q5_0,q4_k,q4_1,q4_0,iq4_nl,q3_k,q2_k";
    const char* usage = "usage: rwkv-perplexity MODEL TEXT [--bytes N] [--utf16le] [--types f32,q8_0,q4_0+i8,...]\n";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::fputs(usage, stdout);
            return 0;
        }
        if (a == "--bytes" && i + 1 < argc) {
            // A count, not whatever prefix std::stoul would accept ("12x", "-1").
            const std::string n = argv[++i];
            if (n.empty() || n.size() > 12 || n.find_first_not_of("0123456789") != std::string::npos) {
                std::fprintf(stderr, "rwkv-perplexity: --bytes takes a count, got '%s'\n", n.c_str());
                return 2;
            }
            max_bytes = std::stoul(n);
        } else if (a == "--utf16le") utf16 = true;
        else if (a == "--types" && i + 1 < argc) types = argv[++i];
        else if (a.starts_with("-")) {
            std::fprintf(stderr, "rwkv-perplexity: unknown option '%s'\n%s", a.c_str(), usage);
            return 2;
        } else pos.push_back(a);
    }
    if (pos.size() != 2) {
        std::fputs(usage, stderr);
        return 2;
    }
    std::ifstream f(pos[1], std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "rwkv-perplexity: cannot read %s\n", pos[1].c_str());
        return 1;
    }
    std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    if (text.size() > max_bytes) text.resize(max_bytes);
    if (text.size() < 2) {
        std::fprintf(stderr, "rwkv-perplexity: %s: need at least 2 bytes of text\n", pos[1].c_str());
        return 1;
    }
    std::vector<rwkv::token> ids;
    for (unsigned char ch : text) {
        ids.push_back(ch);
        if (utf16) ids.push_back(0);
    }
    // The delta column needs the f32 figure, so it is shown only when f32 is the first type listed.
    const bool deltas = types == "f32" || types.starts_with("f32,");
    std::printf("%s on %zu bytes of %s%s (nats/byte%s)\n", pos[0].c_str(), text.size(), pos[1].c_str(),
                utf16 ? " as UTF-16LE" : "", deltas ? "; delta vs f32" : "");
    double base = 0.0;
    bool have_base = false;
    std::stringstream list(types);
    for (std::string t; std::getline(list, t, ',');) {
        const std::string label = t;
        const bool i8 = t.size() > 3 && t.ends_with("+i8");
        if (i8) t.resize(t.size() - 3);
        try {
            double v = 0.0;
            if (t == "f32") v = nats_per_byte<float>(pos[0], ids, text.size());
            else if (t == "bf16") v = nats_per_byte<rwkv::bfloat16>(pos[0], ids, text.size());
            else if (t == "f16") v = nats_per_byte<rwkv::half>(pos[0], ids, text.size());
#define RWKV_PPL_FORMAT(name) else if (t == #name) v = nats_per_byte<rwkv::name>(pos[0], ids, text.size(), i8);
            RWKV_PPL_FORMAT(q8_0)
            RWKV_PPL_FORMAT(q4_0)
            RWKV_PPL_FORMAT(q4_1)
            RWKV_PPL_FORMAT(q5_0)
            RWKV_PPL_FORMAT(q5_1)
            RWKV_PPL_FORMAT(q2_k)
            RWKV_PPL_FORMAT(q3_k)
            RWKV_PPL_FORMAT(q4_k)
            RWKV_PPL_FORMAT(q5_k)
            RWKV_PPL_FORMAT(q6_k)
            RWKV_PPL_FORMAT(iq4_nl)
#undef RWKV_PPL_FORMAT
            else {
                std::fprintf(stderr, "rwkv-perplexity: unknown type '%s'\n", t.c_str());
                return 2;
            }
            if (t == "f32" && deltas && !have_base) {
                base = v;
                have_base = true;
            }
            if (have_base) std::printf("  %-7s %.4f  (%+.4f)\n", label.c_str(), v, v - base);
            else std::printf("  %-7s %.4f\n", label.c_str(), v);
        } catch (const rwkv::error& e) {
            std::printf("  %-7s n/a  (%s)\n", label.c_str(), e.what());
        }
        std::fflush(stdout);
    }
    return 0;
}
