#pragma once
// rwkv::Matrix<T> — a read-only [rows][cols] row-major weight matrix (PyTorch nn.Linear layout:
// [out][in]). It either points into a memory-mapped checkpoint (zero copy, when the file's
// dtype is T) or owns a converted copy. Either way the data never moves after construction.

#include <cstddef>
#include <memory>
#include <vector>

namespace rwkv {

template <class T>
struct Matrix {
    const T* data = nullptr;
    int rows = 0;
    int cols = 0;
    std::shared_ptr<const void> owner;  // the mapping or the owned buffer keeping `data` alive
    bool mapped = false;                // true when `data` points into the model file

    const T* row(int r) const { return data + static_cast<std::size_t>(r) * static_cast<std::size_t>(cols); }
    std::size_t size() const { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }

    static Matrix owning(std::vector<T> values, int rows, int cols) {
        auto buf = std::make_shared<std::vector<T>>(std::move(values));
        Matrix m;
        m.data = buf->data();
        m.rows = rows;
        m.cols = cols;
        m.owner = buf;
        return m;
    }
};

}  // namespace rwkv
