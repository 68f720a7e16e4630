#pragma once
// Training wrappers rename every parameter: DistributedDataParallel / DeepSpeed save
// "module.<name>", Lightning Fabric "_forward_module.<name>", torch.compile "_orig_mod.<name>".
// Users then hold a state_dict whose names are the official ones behind a prefix. Any reader
// calls strip_wrapper_prefixes() on its result: a prefix carried by every tensor name is removed
// (with a note saying so); one carried by only some names is refused by name, since which tensors
// it wraps is then a guess.

#include <array>
#include <string>
#include <string_view>

#include "../error.hpp"
#include "tensor.hpp"

namespace rwkv::io {

inline constexpr std::array<std::string_view, 3> wrapper_prefixes = {"_forward_module.", "module.", "_orig_mod."};

// Strips, repeatedly (wrappers nest: "_forward_module.module."), every prefix of
// wrapper_prefixes that all of `file`'s tensor names carry, appending one note per prefix to
// file.notes. Throws rwkv::error naming the prefix, the counts and an example of each kind when
// only some names carry one. Non-tensor keys (file.other_keys) are left as they are.
inline void strip_wrapper_prefixes(tensor_file& file) {
    for (bool again = true; again && !file.tensors.empty();) {
        again = false;
        for (std::string_view prefix : wrapper_prefixes) {
            std::size_t with = 0;
            const tensor_view* example_with = nullptr;
            const tensor_view* example_without = nullptr;
            for (const tensor_view& t : file.tensors) {
                if (t.name.size() > prefix.size() && t.name.starts_with(prefix)) {
                    ++with;
                    if (!example_with) example_with = &t;
                } else if (!example_without) {
                    example_without = &t;
                }
            }
            if (with == 0) continue;
            if (with != file.tensors.size())
                throw error(file.path.string() + ": " + std::to_string(with) + " of " +
                            std::to_string(file.tensors.size()) +
                            " tensor names start with the training-wrapper prefix '" + std::string(prefix) +
                            "' (e.g. '" + example_with->name + "') and the others do not (e.g. '" +
                            example_without->name + "'); save the unwrapped model's state_dict()");
            for (tensor_view& t : file.tensors) t.name.erase(0, prefix.size());
            file.notes.push_back("stripped the training-wrapper prefix '" + std::string(prefix) + "' from all " +
                                 std::to_string(with) + " tensor names");
            again = true;
        }
    }
}

}  // namespace rwkv::io
