// Writes one random Finch (x060) model, RWKV-LM's initialisation (rwkv/init.hpp), in the files the
// side-by-side campaign (tools/peer-campaign.sh) needs:
//   PREFIX.safetensors               bf16, official names (this library; rwkv-quantize makes the GGUFs)
//   PREFIX-rwkvcpp-FP16.bin          rwkv.cpp's v101 file, laid out as rwkv.cpp's own converter
//                                    (python/convert_pytorch_to_ggml.py) writes it: time_* tensors
//                                    squeezed and in fp32, LoRA matrices transposed, time_decay as
//                                    [H, N, 1], every other matrix in fp16, dims in ggml order.
// A developer tool, built by the campaign script (not by CMake).
//
//   make_models L C F V PREFIX        e.g. make_models 24 2048 7168 65536 finch-1b6
#include <rwkv/init.hpp>
#include <rwkv/model.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

float value_at(const rwkv::io::tensor_view& t, std::size_t i) {
    if (t.type == rwkv::dtype::f32) {
        float f;
        std::memcpy(&f, t.data.data() + 4 * i, 4);
        return f;
    }
    if (t.type != rwkv::dtype::bf16) throw rwkv::error(t.name + ": expected f32 or bf16");
    std::uint16_t b;
    std::memcpy(&b, t.data.data() + 2 * i, 2);
    return rwkv::bfloat16::from_bits(b).to_float();
}

void write_safetensors(const rwkv::io::tensor_file& f, const std::string& path) {
    std::string header = "{";
    std::uint64_t off = 0;
    for (const auto& t : f.tensors) {
        const char* dt = t.type == rwkv::dtype::bf16 ? "BF16" : "F32";
        if (header.size() > 1) header += ',';
        header.append("\"").append(t.name).append("\":{\"dtype\":\"").append(dt).append("\",\"shape\":[");
        for (std::size_t d = 0; d < t.shape.size(); ++d) header.append(d ? "," : "").append(std::to_string(t.shape[d]));
        header.append("],\"data_offsets\":[").append(std::to_string(off)).append(",");
        off += t.data.size();
        header.append(std::to_string(off)).append("]}");
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = header.size();  // little-endian hosts
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header;
    for (const auto& t : f.tensors)
        out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    if (!out) throw rwkv::error(path + ": write failed");
}

void write_rwkvcpp_fp16(const rwkv::io::tensor_file& f, const rwkv::Config& c, const std::string& path) {
    std::ofstream o(path, std::ios::binary);
    auto i32 = [&](std::int32_t v) { o.write(reinterpret_cast<const char*>(&v), 4); };
    i32(0x67676d66);  // 'ggmf'
    i32(101);
    i32(c.vocab_size);
    i32(c.n_embd);
    i32(c.n_layer);
    i32(1);  // FP16
    for (const auto& t : f.tensors) {
        const std::string& k = t.name;
        const auto n = static_cast<std::size_t>(t.numel());
        std::vector<std::int64_t> shape(t.shape.begin(), t.shape.end());
        std::vector<float> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = value_at(t, i);
        const bool time = k.find(".time_") != std::string::npos;
        if (time) {  // squeeze
            std::vector<std::int64_t> s;
            for (auto d : shape)
                if (d != 1) s.push_back(d);
            shape = s;
        }
        if (k.find(".time_faaaa") != std::string::npos) shape.push_back(1);
        if (k.find(".time_maa_w1") != std::string::npos || k.find(".time_decay_w") != std::string::npos) {
            const auto a = shape[0], b = shape[1];  // [a, b] -> [b, a]
            std::vector<float> w(n);
            for (std::int64_t i = 0; i < a; ++i)
                for (std::int64_t j = 0; j < b; ++j) w[j * a + i] = v[i * b + j];
            v.swap(w);
            shape = {b, a};
        }
        if (k.find(".time_maa_w2") != std::string::npos) {  // [5, D, C] -> [5, C, D]
            const auto s5 = shape[0], d = shape[1], cc = shape[2];
            std::vector<float> w(n);
            for (std::int64_t s = 0; s < s5; ++s)
                for (std::int64_t i = 0; i < d; ++i)
                    for (std::int64_t j = 0; j < cc; ++j) w[(s * cc + j) * d + i] = v[(s * d + i) * cc + j];
            v.swap(w);
            shape = {s5, cc, d};
        }
        if (k.find(".time_decay") != std::string::npos && k.find("_w") == std::string::npos)
            shape = {c.n_head, static_cast<std::int64_t>(n) / c.n_head, 1};
        const bool fp16 = shape.size() > 1 && !time;
        i32(static_cast<std::int32_t>(shape.size()));
        i32(static_cast<std::int32_t>(k.size()));
        i32(fp16 ? 1 : 0);
        for (auto it = shape.rbegin(); it != shape.rend(); ++it) i32(static_cast<std::int32_t>(*it));
        o.write(k.data(), static_cast<std::streamsize>(k.size()));
        if (fp16) {
            std::vector<rwkv::half> h(n);
            for (std::size_t i = 0; i < n; ++i) h[i] = rwkv::half::from_float(v[i]);
            o.write(reinterpret_cast<const char*>(h.data()), static_cast<std::streamsize>(2 * n));
        } else {
            o.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(4 * n));
        }
    }
    if (!o) throw rwkv::error(path + ": write failed");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: make_models LAYERS EMBD FFN VOCAB PREFIX\n");
        return 2;
    }
    try {
        rwkv::Config c;
        c.version = rwkv::Version::x060;
        c.n_layer = std::atoi(argv[1]);
        c.n_embd = std::atoi(argv[2]);
        c.dim_ffn = std::atoi(argv[3]);
        c.vocab_size = std::atoi(argv[4]);
        c.finalize();
        const auto f = rwkv::detail::random_tensors<rwkv::bfloat16>(c, 1, rwkv::Init::fast);
        const std::string prefix = argv[5];
        write_safetensors(f, prefix + ".safetensors");
        write_rwkvcpp_fp16(f, c, prefix + "-rwkvcpp-FP16.bin");
        std::printf("wrote %s.safetensors and %s-rwkvcpp-FP16.bin\n", prefix.c_str(), prefix.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_models: %s\n", e.what());
        return 1;
    }
}
