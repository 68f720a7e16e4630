#pragma once
// rwkv::backend::cpu::ThreadPool — persistent workers for the per-token kernels (mat-vec, WKV).
//
// Decode calls the pool a few hundred times per token, each job lasting tens to hundreds of
// microseconds, so the cost of one run() must be far below that: no thread creation, no
// allocation, no std::function. A run publishes (function pointer, context pointer), bumps a
// generation counter and wakes the workers; every thread (the caller is thread 0) calls
// f(index, size); the caller then waits on a countdown of unfinished workers. Both waits spin
// for a short while before sleeping on the atomic (futex), because the next job usually
// arrives within microseconds and a futex wake costs several.
//
// Concurrency: run() holds an internal mutex, so two threads may share a pool (the second
// waits). try_run() does not wait: it returns false when the pool is busy, so a caller can do
// the work itself instead (`if (!pool.try_run(f)) f(0, 1);`). f must not call run() on the
// same pool (it would deadlock).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rwkv::backend::cpu {

namespace detail {
// Tell the core we are spinning: on x86 it frees pipeline resources for the sibling thread and
// avoids a memory-order mis-speculation when the awaited store lands.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

// Spin until pred() holds or `budget` elapses; true if pred() held. Polls come in short bursts
// separated by a yield: on a machine with more runnable threads than cores (a shared machine, or
// a pool larger than the core count) the thread we wait for may be queued behind us, and a pure
// spin would hold the core for a whole time slice. Measured on a loaded 2-core machine: pure
// spinning made a tiny run cost 100-1000 us, yielding every 16 polls about 2 us (a futex wake
// about 2-5 us); with an idle core the yield is a cheap system call.
template <class Pred>
bool spin_until(Pred pred, std::chrono::nanoseconds budget) {
    if (pred()) return true;
    if (budget.count() <= 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + budget;
    for (;;) {
        for (int i = 0; i < 16; ++i) {
            cpu_relax();
            if (pred()) return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::yield();
    }
}
}  // namespace detail

class ThreadPool {
public:
    // n_threads counts the calling thread: 1 means no workers (run() calls f(0, 1) inline).
    // `spin` is how long an idle thread polls before sleeping.
    explicit ThreadPool(int n_threads, std::chrono::microseconds spin = std::chrono::microseconds(200))
        : size_(n_threads < 1 ? 1 : n_threads), spin_ns_(std::chrono::nanoseconds(spin).count()) {
        workers_.reserve(static_cast<std::size_t>(size_ - 1));
        try {
            for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
        } catch (...) {
            stop_workers();  // a failed thread creation must not leave joinable threads behind
            throw;
        }
    }

    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    ~ThreadPool() { stop_workers(); }

    int size() const { return size_; }

    // The number of hardware threads (at least 1): the default for `--threads`.
    static int hardware_threads() {
        const unsigned n = std::thread::hardware_concurrency();
        return n == 0 ? 1 : static_cast<int>(n);
    }

    // Spin budget of idle threads; takes effect from their next wait.
    void set_spin(std::chrono::microseconds spin) {
        spin_ns_.store(std::chrono::nanoseconds(spin).count(), std::memory_order_relaxed);
    }

    // Calls f(thread_index, size()) on every thread, the caller being index 0, and returns when
    // all calls have returned. An exception from any call is rethrown here (the first one).
    template <class F>
    void run(F&& f) {
        std::lock_guard<std::mutex> lock(mutex_);
        dispatch(std::forward<F>(f));
    }

    // As run(), but returns false at once (without calling f) when another thread is using
    // the pool.
    template <class F>
    bool try_run(F&& f) {
        std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return false;
        dispatch(std::forward<F>(f));
        return true;
    }

private:
    using Fn = void (*)(void* ctx, int index, int size);

    template <class F>
    void dispatch(F&& f) {
        if (size_ == 1) {
            f(0, 1);
            return;
        }
        using G = std::remove_reference_t<F>;
        // Type-erase without allocating: the callable lives on the caller's stack for the whole
        // run, since we do not return before every worker is done with it.
        fn_ = [](void* ctx, int index, int size) { (*static_cast<G*>(ctx))(index, size); };
        ctx_ = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
        pending_.store(size_ - 1, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);  // publishes fn_, ctx_, pending_
        generation_.notify_all();                             // cheap when nobody sleeps (libstdc++ counts waiters)

        std::exception_ptr caller_error;
        try {
            f(0, size_);
        } catch (...) {
            caller_error = std::current_exception();  // still wait: workers use ctx_
        }
        wait_done();
        // Clear a worker's exception even when the caller's wins, or the next run would throw it.
        std::exception_ptr error = std::move(caller_error);
        if (has_error_.load(std::memory_order_relaxed)) {
            if (!error) error = std::move(worker_error_);
            worker_error_ = nullptr;
            has_error_.store(false, std::memory_order_relaxed);
        }
        if (error) std::rethrow_exception(error);
    }

    void wait_done() {
        const auto budget = std::chrono::nanoseconds(spin_ns_.load(std::memory_order_relaxed));
        if (detail::spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; }, budget)) return;
        for (int p; (p = pending_.load(std::memory_order_acquire)) != 0;) pending_.wait(p, std::memory_order_acquire);
    }

    void worker_loop(int index) {
        std::uint32_t seen = 0;
        for (;;) {
            const auto budget = std::chrono::nanoseconds(spin_ns_.load(std::memory_order_relaxed));
            if (!detail::spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }, budget)) {
                while (generation_.load(std::memory_order_acquire) == seen)
                    generation_.wait(seen, std::memory_order_acquire);
            }
            // The caller cannot bump the generation again before this worker checks in below,
            // so exactly one generation has passed.
            seen = generation_.load(std::memory_order_acquire);
            if (stop_) return;
            try {
                fn_(ctx_, index, size_);
            } catch (...) {
                bool expected = false;
                if (has_error_.compare_exchange_strong(expected, true, std::memory_order_relaxed))
                    worker_error_ = std::current_exception();  // read by the caller after pending_ hits 0
            }
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
        }
    }

    void stop_workers() {
        if (workers_.empty()) return;
        stop_ = true;
        generation_.fetch_add(1, std::memory_order_release);
        generation_.notify_all();
        for (auto& t : workers_) t.join();
        workers_.clear();
    }

    int size_;
    std::atomic<std::int64_t> spin_ns_;
    std::mutex mutex_;
    // Written by the caller before the release bump of generation_, read by workers after the
    // acquire load that sees it.
    Fn fn_ = nullptr;
    void* ctx_ = nullptr;
    bool stop_ = false;
    // Each on its own cache line: workers poll generation_ while the caller polls pending_.
    alignas(64) std::atomic<std::uint32_t> generation_{0};
    alignas(64) std::atomic<int> pending_{0};
    alignas(64) std::atomic<bool> has_error_{false};
    std::exception_ptr worker_error_;
    std::vector<std::thread> workers_;
};

}  // namespace rwkv::backend::cpu
