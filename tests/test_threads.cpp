// ThreadPool: every index called exactly once per run, no lost wake-ups (spinning and sleeping),
// exceptions, concurrent callers, try_run when busy, destruction while idle.

#include <rwkv/backend/cpu/threads.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using rwkv::backend::cpu::ThreadPool;
using namespace std::chrono_literals;

TEST_CASE("a pool of one runs the callable inline as thread 0 of 1", "[threads]") {
    ThreadPool pool(1);
    CHECK(pool.size() == 1);
    int calls = 0;
    std::thread::id who;
    pool.run([&](int i, int n) {
        CHECK(i == 0);
        CHECK(n == 1);
        who = std::this_thread::get_id();
        ++calls;
    });
    CHECK(calls == 1);
    CHECK(who == std::this_thread::get_id());
    CHECK(ThreadPool(0).size() == 1);  // nonsense sizes mean "no workers"
    CHECK(ThreadPool::hardware_threads() >= 1);
}

TEST_CASE("every thread index is called exactly once per run; the caller is index 0", "[threads]") {
    for (int n : {2, 3, 4, 7}) {
        ThreadPool pool(n);
        REQUIRE(pool.size() == n);
        for (int run = 0; run < 500; ++run) {
            std::array<std::atomic<int>, 8> count{};
            std::atomic<int> bad_size{0};
            std::thread::id zero;
            pool.run([&](int i, int size) {
                if (size != n) bad_size.fetch_add(1);
                count[static_cast<std::size_t>(i)].fetch_add(1);
                if (i == 0) zero = std::this_thread::get_id();
            });
            for (int i = 0; i < 8; ++i) REQUIRE(count[static_cast<std::size_t>(i)].load() == (i < n ? 1 : 0));
            REQUIRE(bad_size.load() == 0);
            REQUIRE(zero == std::this_thread::get_id());
        }
    }
}

// 100k tiny runs: any lost wake-up hangs the test, any lost or doubled call breaks the sum.
// The runs with no spin force every wait through the futex path.
TEST_CASE("many tiny runs lose no wake-up", "[threads]") {
    for (auto spin : {200us, 0us}) {
        for (int n : {2, 3}) {
            ThreadPool pool(n, spin);
            std::atomic<long> sum{0};
            const long runs = spin.count() == 0 ? 20000 : 100000;
            for (long r = 0; r < runs; ++r)
                pool.run([&](int i, int) { sum.fetch_add(i + 1, std::memory_order_relaxed); });
            CHECK(sum.load() == runs * n * (n + 1) / 2);
        }
    }
}

TEST_CASE("writes made during a run are visible to the caller afterwards", "[threads]") {
    ThreadPool pool(3);
    std::vector<int> out(3 * 1000);
    for (int r = 0; r < 1000; ++r) {
        pool.run([&](int i, int n) {
            for (int k = i; k < 3000; k += n) out[static_cast<std::size_t>(k)] = r + k;
        });
        for (int k = 0; k < 3000; ++k) REQUIRE(out[static_cast<std::size_t>(k)] == r + k);
    }
}

TEST_CASE("an exception in any thread reaches the caller, and the pool stays usable", "[threads]") {
    ThreadPool pool(3);
    for (int thrower : {0, 1, 2}) {
        std::atomic<int> calls{0};
        CHECK_THROWS_AS(pool.run([&](int i, int) {
            calls.fetch_add(1);
            if (i == thrower) throw std::runtime_error("boom");
        }),
                        std::runtime_error);
        CHECK(calls.load() == 3);  // the others still ran to completion
    }
    // Several throwers: one exception arrives, and none is left over for the next run.
    CHECK_THROWS_AS(pool.run([](int, int) { throw std::runtime_error("all"); }), std::runtime_error);
    std::atomic<int> calls{0};
    CHECK_NOTHROW(pool.run([&](int, int) { calls.fetch_add(1); }));
    CHECK(calls.load() == 3);
}

TEST_CASE("try_run refuses while another thread is running the pool; run waits its turn", "[threads]") {
    ThreadPool pool(2);
    std::atomic<bool> started{false}, release{false};
    std::thread holder([&] {
        pool.run([&](int i, int) {
            if (i != 0) return;
            started.store(true);
            while (!release.load()) std::this_thread::yield();
        });
    });
    while (!started.load()) std::this_thread::yield();
    int calls = 0;
    CHECK_FALSE(pool.try_run([&](int, int) { ++calls; }));
    CHECK(calls == 0);
    release.store(true);
    holder.join();
    std::atomic<int> after{0};
    CHECK(pool.try_run([&](int, int) { after.fetch_add(1); }));
    CHECK(after.load() == 2);
}

TEST_CASE("two threads sharing a pool through run() are serialised", "[threads]") {
    ThreadPool pool(3);
    std::atomic<long> sum{0};
    auto user = [&] {
        for (int r = 0; r < 2000; ++r) pool.run([&](int i, int) { sum.fetch_add(i + 1, std::memory_order_relaxed); });
    };
    std::thread a(user), b(user);
    a.join();
    b.join();
    CHECK(sum.load() == 2L * 2000 * 6);
}

TEST_CASE("a pool can be destroyed while its workers spin or sleep", "[threads]") {
    { ThreadPool never_used(3); }
    {
        ThreadPool spinning(3);
        spinning.run([](int, int) {});
    }
    {
        ThreadPool sleeping(3, 0us);
        sleeping.run([](int, int) {});
        std::this_thread::sleep_for(20ms);
    }
    {
        ThreadPool pool(2);
        pool.set_spin(0us);
        std::this_thread::sleep_for(5ms);  // workers still in the old spin fall asleep now
        std::atomic<int> calls{0};
        pool.run([&](int, int) { calls.fetch_add(1); });
        CHECK(calls.load() == 2);
    }
    SUCCEED();
}
