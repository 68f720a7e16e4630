#pragma once
// Backend tags. The backend is a type, like an xsimd architecture tag: layers and the model are
// templates on it, and each backend supplies its kernels. rwkv::cpu is Eigen + xsimd.

namespace rwkv {

struct cpu {};

}  // namespace rwkv
