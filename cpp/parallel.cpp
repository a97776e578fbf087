// The pool of helper threads behind detail::parallel_chunks (parallel.hpp).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "parallel.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTDEFOCUS_HAVE_ATFORK 1
#endif

namespace fastdefocus {
namespace detail {
namespace {

// Most helper threads the pool starts, whatever the thread counts asked for.
constexpr int kMaxHelpers = 256;

struct Job {
    void (*fn)(void*);
    void* arg;
    int slots;       // pool threads that may still start fn
    int active = 0;  // pool threads running fn
};

class Pool {
  public:
    void run(int helpers, void (*fn)(void*), void* arg) {
        Job job{fn, arg, helpers};
        {
            std::lock_guard<std::mutex> lock(mutex_);
            // enough idle threads for this job: concurrent callers each get their helpers
            start_threads(helpers - idle_);
            open_.push_back(&job);
        }
        wake_.notify_all();
        fn(arg);  // the caller's share: fn returns when no work is left to take
        std::unique_lock<std::mutex> lock(mutex_);
        for (auto it = open_.begin(); it != open_.end(); ++it)
            if (*it == &job) {
                open_.erase(it);  // no pool thread starts it from now on
                break;
            }
        done_.wait(lock, [&] { return job.active == 0; });
    }

  private:
    // Starts `more` pool threads (under the lock), never more than kMaxHelpers in all; fewer if
    // the system refuses them.
    void start_threads(int more) {
        for (; more > 0 && threads_ < kMaxHelpers; --more) {
            try {
                std::thread(&Pool::loop, this).detach();
            } catch (...) {
                return;  // the threads there are (and the caller) do the work
            }
            ++threads_;
            ++idle_;  // counted idle from the start: it takes a job as soon as it runs
        }
    }

    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            Job* job = nullptr;
            wake_.wait(lock, [&] { return (job = next_job()) != nullptr; });
            --idle_;
            --job->slots;
            ++job->active;
            lock.unlock();
            job->fn(job->arg);
            lock.lock();
            ++idle_;
            if (--job->active == 0) done_.notify_all();
        }
    }

    // The newest open job with a free slot (the innermost of nested calls), or nullptr.
    Job* next_job() {
        for (auto it = open_.rbegin(); it != open_.rend(); ++it)
            if ((*it)->slots > 0) return *it;
        return nullptr;
    }

    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<Job*> open_;
    int threads_ = 0;
    int idle_ = 0;  // threads waiting for a job (or started and not yet waiting)
};

// Never destroyed: its threads block on it until the process ends.
std::atomic<Pool*> g_pool{nullptr};
std::once_flag g_atfork;

#ifdef FASTDEFOCUS_HAVE_ATFORK
// The child of a fork has only the forking thread: it must not wait for the parent's pool
// threads (nor touch the pool's mutex, which one of them may have held), so it starts anew.
void forget_pool_in_child() { g_pool.store(nullptr, std::memory_order_relaxed); }
#endif

Pool& pool() {
    std::call_once(g_atfork, [] {
#ifdef FASTDEFOCUS_HAVE_ATFORK
        pthread_atfork(nullptr, nullptr, forget_pool_in_child);
#endif
    });
    Pool* p = g_pool.load(std::memory_order_acquire);
    if (p == nullptr) {
        Pool* fresh = new Pool();
        if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel))
            p = fresh;
        else
            delete fresh;  // another thread made it first
    }
    return *p;
}

}  // namespace

void run_with_helpers(int helpers, void (*fn)(void*), void* arg) {
    if (helpers <= 0) {
        fn(arg);
        return;
    }
    pool().run(helpers, fn, arg);
}

}  // namespace detail
}  // namespace fastdefocus
