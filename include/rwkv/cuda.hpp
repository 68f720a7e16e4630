#pragma once
// rwkv::Model<T, rwkv::cuda> — the CUDA backend (NVIDIA GPUs). Include this header instead of
// (or after) <rwkv/model.hpp> in a file compiled by nvcc (a .cu file, C++20); link cudart and
// cuBLAS (CMake: CUDA::cudart CUDA::cublas).
//
//   auto model = rwkv::Model<rwkv::bfloat16, rwkv::cuda>::load("RWKV-x060-World-1B6-v2.1.pth");
//   auto state = model.new_state();                                 // rwkv::CudaState
//   std::span<const float> logits = model.forward(std::span<const rwkv::token>(ids), state);
//
// Same calls as the CPU Model (load, random, new_state, reset, forward, forward_all,
// forward_batch); states serialise in the CPU State's format (CudaState::to_host / from_host,
// save / load), so a conversation moves between CPU and GPU. backend/cuda/model.cuh says how
// the pass is laid out; docs/ARCHITECTURE.md how it fits the rest.

#if !defined(__CUDACC__)
#error \
    "rwkv/cuda.hpp is the CUDA backend: compile this file with nvcc (a .cu file, or -x cu), C++20, and link CUDA::cudart and CUDA::cublas. CPU-only programs include <rwkv/model.hpp>."
#endif

// Eigen (used by the CPU backend this header also includes) must not mark its functions
// __host__ __device__ here: nothing in it runs on the device, and nvcc warns on them otherwise.
#ifndef EIGEN_NO_CUDA
#define EIGEN_NO_CUDA
#endif

#include "backend/cuda/math.hpp"
#include "backend/cuda/model.cuh"
#include "backend/cuda/ops.cuh"
#include "backend/cuda/runtime.cuh"
#include "backend/cuda/state.cuh"
#include "model.hpp"
