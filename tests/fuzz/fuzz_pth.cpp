// PyTorch .pth checkpoints end to end: the bytes go into an in-memory file that
// rwkv::io::load_pth opens by path (open, fstat, mmap, zip, inflate, pickle, tensor table,
// strides, dtype conversion, wrapper prefixes), then every tensor's bytes are read and the model
// shape is inferred, the weights fingerprinted, and the tensors loaded as a state-tuning file into
// a small State. Any bytes give tensors inside live memory, or an rwkv::error.
#include <rwkv/checkpoint.hpp>
#include <rwkv/fingerprint.hpp>
#include <rwkv/io/pth.hpp>
#include <rwkv/state_file.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const fuzz::memory_file file(data, size);
    try {
        const rwkv::io::tensor_file f = rwkv::io::load_pth(file.path());
        unsigned sum = 0;
        for (const auto& t : f.tensors) {
            if (t.data.size() != rwkv::dtype_bytes(t.type, t.numel()))
                fuzz::finding("pth: tensor '" + t.name + "' span size differs from its shape");
            sum += fuzz::touch(t.data);
        }
        (void)sum;
        (void)rwkv::weights_fingerprint(f);
        try {
            // Two layers of one 2x2 head: the shape of corpus/pth/state-only.pth.
            rwkv::Config c;
            c.n_layer = 2;
            c.n_embd = 2;
            c.head_size = 2;
            c.vocab_size = 4;
            rwkv::State st(c.finalize());
            rwkv::load_time_state(st, f);
        } catch (const rwkv::error&) {}
        (void)rwkv::detail::infer_config(f);
    } catch (const rwkv::error&) {}
    return 0;
}
