#pragma once
// The machine's limits (machine_limits.cpp, compiled with -march=native) for roofline.cpp.

#include <cstddef>
#include <string>

namespace machine_limits {

enum class Load { plain, nt, prefetch_t0, prefetch_nta };

struct Variant {
    int threads = 1, streams = 8;
    Load kind = Load::plain;
    std::size_t ahead_bytes = 0;  // prefetch distance
    bool skew = false;            // streams a few lines apart modulo 4 KiB, not a power of two apart
    bool huge = false;            // transparent huge pages
};

struct Bandwidth {
    double bytes_per_s = 0.0;
    int threads = 0, streams = 0;
    std::string how;  // e.g. "2 threads x 8 streams, prefetchnta +1024 B, 4 KiB pages"
    Variant variant;  // the winner, for read_bandwidth_again
    std::size_t bytes = 0;
};

// The plain probe: `streams` streams per thread a power of two apart, plain loads, 4 KiB pages.
double read_bandwidth(int threads, std::size_t bytes, int streams);
// The best read bandwidth over the probe's variants, `threads` threads at most.
Bandwidth best_read_bandwidth(int threads, std::size_t bytes);
// The winner of best_read_bandwidth measured again, now.
double read_bandwidth_again(const Bandwidth& b);
// Frees the buffer read_bandwidth_again keeps (before resident memory is measured).
void release_buffers();
// One core's Eigen sgemm rate, flop/s.
double sgemm_one_core();

}  // namespace machine_limits
