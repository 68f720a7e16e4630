// Must fail to compile under a host compiler: rwkv/cuda.hpp is the CUDA backend and needs nvcc.
#include <rwkv/cuda.hpp>

int main() { return 0; }
