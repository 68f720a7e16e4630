// The one out-of-line definition of rwkv::AnyModel::load (and so the one instantiation of
// Model<stored>) shared by the programs that link rwkv_any_model: the CLIs, the server and the C
// API. Compiling it once instead of once per program saves minutes per build (see model.hpp).
#define RWKV_DEFINE_ANY_MODEL
#include <rwkv/model.hpp>
