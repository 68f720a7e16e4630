// Must fail to compile: Model's Backend must be a tag with backend_ops (rwkv::cpu, rwkv::reference).
#include <rwkv/model.hpp>

struct not_a_backend {};

int main() {
    auto m = rwkv::Model<float, not_a_backend>::load("model.pth");
    return m.config().n_layer;
}
