// fastdefocus/filters.hpp - C++ interface of the fastdefocus image filters.
//
// All images are single-channel, row-major, C-contiguous float32 arrays of
// `h` rows by `w` columns (h, w >= 1).  Borders use "reflect" (reflect-101:
// ... c b | a b c d | c b ...), repeated for windows larger than the image
// (index folding with period 2(n-1); a length-1 axis maps every index to 0).
//
// Sums are accumulated in double precision, the work is split over chunks of
// rows between `threads` threads (0 = default_threads(), and 1 for images
// under 32768 pixels) and the cost per pixel does not depend on the radius.
//
// Invalid sizes/arguments throw std::invalid_argument.  Values are not
// checked for finiteness here: callers must pass finite data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>

namespace fastdefocus {

// Index of position `j` (any integer) of a reflect-101 extended axis of
// length n >= 1.
std::int64_t reflect_index(std::int64_t j, std::int64_t n) noexcept;

// Number of threads used when `threads` is 0: $FASTDEFOCUS_NUM_THREADS, else
// $OMP_NUM_THREADS, else the CPUs this process may run on.
int default_threads() noexcept;

// Scratch memory: a thread that runs the filters or the estimator keeps up to 64 MB of its freed
// planes for its next call, so that the frames of a stream reuse them. release_scratch() frees
// the calling thread's now (a thread's are freed when it ends); scratch_kept_bytes() is how
// much it keeps.
void release_scratch() noexcept;
std::size_t scratch_kept_bytes() noexcept;

// True when the library was built with OpenMP (FASTDEFOCUS_OPENMP=ON) rather
// than std::thread.
bool built_with_openmp() noexcept;

// Added to every weight of the weighted guided filter (w_e = weights + kWeightFloor), so a
// window of zero weight still has a defined mean.  The Python constant
// fastdefocus._params.WEIGHT_FLOOR is tested equal to it (exposed as _native.WEIGHT_FLOOR).
inline constexpr double kWeightFloor = 1e-6;

// Mean over the (2r+1) x (2r+1) window.  `dst` must not overlap `src`.
void box_filter(const float* src, float* dst, std::int64_t h, std::int64_t w,
                std::int64_t radius, int threads = 0);

// Guided filter (He et al.) of `src` with the gray `guide`.  With `weights`
// (nullable, per-pixel, >= 0) it is the weighted guided filter: with
// w_e = weights + kWeightFloor the window fit uses the w_e-weighted means, and the
// output is q = box(a) * I + box(b).  `dst` may be the same buffer as `src`
// (then a temporary image is used) but must not overlap guide or weights, nor
// partially overlap src.
void guided_filter(const float* src, const float* guide, const float* weights,
                   float* dst, std::int64_t h, std::int64_t w,
                   std::int64_t radius, double eps, int threads = 0);

// Mean local linear coefficients of guided_filter (same arguments and
// weighted semantics): a = A and b = B with A = box(a_k), B = box(b_k), so
// that guided_filter(src, guide, weights) == A * guide + B up to float
// rounding.  For guided upsampling ("fast guided filter", He & Sun 2015):
// compute them at low resolution, resize them and apply them to the full-
// resolution guide.  guided_filter is computed by the same code, with the
// last step fused.  `a` and `b` must not overlap each other nor src, guide
// or weights.
void guided_coefficients(const float* src, const float* guide, const float* weights, float* a,
                         float* b, std::int64_t h, std::int64_t w, std::int64_t radius, double eps,
                         int threads = 0);

// `iterations` (>= 1) applications of guided_filter, feeding each output back
// as the next source, with the same guide and weights.  `dst` may equal `src`.
void iterative_guided_filter(const float* src, const float* guide,
                             const float* weights, float* dst, std::int64_t h,
                             std::int64_t w, std::int64_t radius, double eps,
                             int iterations, int threads = 0);

struct PatchGrid {
    std::int64_t ny;
    std::int64_t nx;
};

// Grid of patches: ny = ceil(max(h - size, 0) / stride) + 1 (same for nx).
PatchGrid patch_grid(std::int64_t h, std::int64_t w, std::int64_t size,
                     std::int64_t stride);

// Copies the ny*nx patches (size x size, row-major over the grid) of `gray`,
// reflect-padded at the bottom and right, into `out` (ny*nx*size*size floats).
// With `normalize`, each patch becomes (p - mean) / max(std, std_floor) with
// the population std (mean and std computed in double).
void extract_patches(const float* gray, std::int64_t h, std::int64_t w,
                     std::int64_t size, std::int64_t stride, bool normalize,
                     double std_floor, float* out, int threads = 0);

// The `count` patches first, first + 1, ... of that grid (row-major), as extract_patches
// writes them, into `out` (count*size*size floats): a batch at a time.
void extract_patch_range(const float* gray, std::int64_t h, std::int64_t w, std::int64_t size,
                         std::int64_t stride, bool normalize, double std_floor, std::int64_t first,
                         std::int64_t count, float* out, int threads = 0);

// The patches indices[0], ..., indices[count - 1] of that grid (row-major grid indices), as
// extract_patches writes them, into `out` (count*size*size floats).
void extract_patch_list(const float* gray, std::int64_t h, std::int64_t w, std::int64_t size,
                        std::int64_t stride, bool normalize, double std_floor, const std::int64_t* indices,
                        std::int64_t count, float* out, int threads = 0);

}  // namespace fastdefocus
