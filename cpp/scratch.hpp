// Scratch buffers reused across calls (internal, not installed).
//
// The estimator's planes (luminance, padded source, patch batch, probabilities, refine and snap
// planes) are a few MB each at 640x480. Freshly allocated per frame, every one of them comes
// back from the kernel as new pages that fault on first touch: on a stream of frames that was
// several percent of the frame time. A Scratch<T> takes its block from a pool kept per thread
// and gives it back when it goes out of scope, so the frames of a stream (one thread, or one
// worker thread each) reuse the same memory. Contents are uninitialised, as new T[n]'s.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace fastdefocus {
namespace detail {

// Bytes of free blocks one thread keeps (a 640x480 frame at stride 8 uses some 20 MB, a
// 1280x720 one some 60 MB); a block given back beyond this is freed at once.
// fastdefocus::release_scratch() frees the calling thread's.
constexpr std::size_t kScratchKeepBytes = std::size_t(64) << 20;

class ScratchPool {
  public:
    ScratchPool() = default;
    ScratchPool(const ScratchPool&) = delete;
    ScratchPool& operator=(const ScratchPool&) = delete;
    ~ScratchPool() { clear(); }

    // A block of at least `bytes` bytes; `bytes` becomes its size. The best fit among the kept
    // blocks of at most twice the size asked for, else a new one.
    void* acquire(std::size_t& bytes) {
        std::size_t best = free_.size();
        for (std::size_t i = 0; i < free_.size(); ++i) {
            const std::size_t b = free_[i].bytes;
            if (b >= bytes && b / 2 <= bytes && (best == free_.size() || b < free_[best].bytes)) best = i;
        }
        if (best == free_.size()) return ::operator new(bytes);
        const Block block = free_[best];
        free_[best] = free_.back();
        free_.pop_back();
        kept_ -= block.bytes;
        bytes = block.bytes;
        return block.p;
    }

    void release(void* p, std::size_t bytes) noexcept {
        if (kept_ + bytes > kScratchKeepBytes) {
            ::operator delete(p);
            return;
        }
        try {
            free_.push_back(Block{p, bytes});
        } catch (...) {
            ::operator delete(p);
            return;
        }
        kept_ += bytes;
    }

    void clear() noexcept {
        for (const Block& b : free_) ::operator delete(b.p);
        free_.clear();
        kept_ = 0;
    }

    std::size_t kept_bytes() const noexcept { return kept_; }

  private:
    struct Block {
        void* p;
        std::size_t bytes;
    };
    std::vector<Block> free_;
    std::size_t kept_ = 0;
};

// The calling thread's pool.
inline ScratchPool& scratch_pool() {
    static thread_local ScratchPool pool;
    return pool;
}

// n uninitialised T from the calling thread's pool, given back on destruction (on the same
// thread: a Scratch lives on the stack of the call that made it).
template <class T>
class Scratch {
    static_assert(std::is_trivially_copyable<T>::value && std::is_trivially_destructible<T>::value,
                  "Scratch holds plain numbers");

  public:
    Scratch() = default;
    explicit Scratch(std::size_t n) : n_(n) {
        if (n == 0) return;
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
        bytes_ = n * sizeof(T);
        p_ = static_cast<T*>(scratch_pool().acquire(bytes_));
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    Scratch(Scratch&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}
    Scratch& operator=(Scratch&& o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    ~Scratch() { reset(); }

    T* get() noexcept { return p_; }
    const T* get() const noexcept { return p_; }
    T* data() noexcept { return p_; }
    const T* data() const noexcept { return p_; }
    T& operator[](std::size_t i) noexcept { return p_[i]; }
    const T& operator[](std::size_t i) const noexcept { return p_[i]; }
    std::size_t size() const noexcept { return n_; }
    T* begin() noexcept { return p_; }
    T* end() noexcept { return p_ + n_; }
    const T* begin() const noexcept { return p_; }
    const T* end() const noexcept { return p_ + n_; }

  private:
    void reset() noexcept {
        if (p_ != nullptr) scratch_pool().release(p_, bytes_);
        p_ = nullptr;
        n_ = bytes_ = 0;
    }
    T* p_ = nullptr;
    std::size_t n_ = 0, bytes_ = 0;
};

}  // namespace detail
}  // namespace fastdefocus
