// Internal helpers shared by the fastdefocus kernels (not installed).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#ifdef FASTDEFOCUS_USE_OPENMP
#include <omp.h>
#endif

namespace fastdefocus {
namespace detail {

// Minimum number of pixels before work is split between threads.
constexpr std::int64_t kMinParallelPixels = 1 << 15;

// Runs fn(arg) on the calling thread and on up to `helpers` threads of a pool kept for the
// process (started on first need, idle on a condition variable between calls, never
// spinning), and returns once every pool thread that started fn(arg) has returned from it.
// A pool thread that is busy (another call, a nested one) when the caller has finished its
// own share does not start it at all: fn must do whatever work is left on any thread that
// runs it (parallel_chunks' workers take chunks until none is left), and must not throw.
// A child process made by fork() starts a pool of its own.
void run_with_helpers(int helpers, void (*fn)(void*), void* arg);

// Runs body(state, chunk) for every chunk in [0, nchunks) on up to `nt`
// workers that take chunks dynamically (a late or descheduled worker does
// not hold the others up); each worker builds its own state once with
// make_state().  The first exception thrown by any worker is rethrown.
//
// Workers are the calling thread and threads of the pool of run_with_helpers (starting a
// thread per call cost some 70 us per parallel stage, a few ms per frame), or an OpenMP team
// when built with FASTDEFOCUS_OPENMP=ON.
template <class MakeState, class Body>
void parallel_chunks(int nt, std::int64_t nchunks, MakeState&& make_state, Body&& body) {
    if (nchunks <= 0) return;
    nt = static_cast<int>(std::min<std::int64_t>(std::max(nt, 1), nchunks));
    if (nt == 1) {
        auto state = make_state();
        for (std::int64_t c = 0; c < nchunks; ++c) body(state, c);
        return;
    }
    std::atomic<std::int64_t> next{0};
    std::exception_ptr error;
    std::mutex mutex;
    auto worker = [&]() {
        try {
            std::int64_t c = next.fetch_add(1, std::memory_order_relaxed);
            if (c >= nchunks) return;
            auto state = make_state();
            for (; c < nchunks; c = next.fetch_add(1, std::memory_order_relaxed)) body(state, c);
        } catch (...) {
            next.store(nchunks, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(mutex);
            if (!error) error = std::current_exception();
        }
    };
#ifdef FASTDEFOCUS_USE_OPENMP
#pragma omp parallel num_threads(nt)
    { worker(); }
#else
    using Worker = decltype(worker);
    run_with_helpers(nt - 1, [](void* w) { (*static_cast<Worker*>(w))(); }, &worker);
#endif
    if (error) std::rethrow_exception(error);
}

struct NoState {};

// parallel_chunks without per-worker state: body(chunk).
template <class Body>
void parallel_for(int nt, std::int64_t nchunks, Body&& body) {
    parallel_chunks(nt, nchunks, [] { return NoState{}; }, [&](NoState&, std::int64_t c) { body(c); });
}

// Number of threads to use for a job of `items` independent items covering
// `pixels` pixels: `threads` if > 0, else default_threads() (1 for small
// jobs); never more than `items`.
int resolve_threads(int threads, std::int64_t items, std::int64_t pixels) noexcept;

struct ScanResult {
    bool all_finite;    // no NaN or +-inf
    bool any_negative;  // some value < 0 (-0.0 does not count)
};

// One pass over `n` floats, split between threads.
ScanResult scan_values(const float* data, std::int64_t n, int threads = 0);

}  // namespace detail
}  // namespace fastdefocus
