// The public face of the per-thread scratch pool (scratch.hpp).
#include "scratch.hpp"

#include "fastdefocus/filters.hpp"

namespace fastdefocus {

void release_scratch() noexcept { detail::scratch_pool().clear(); }

std::size_t scratch_kept_bytes() noexcept { return detail::scratch_pool().kept_bytes(); }

}  // namespace fastdefocus
