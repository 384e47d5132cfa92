#include "framework/backend/onednn/Parallel.h"

#include <algorithm>

// oneDNN 2.6 exports its threading helper (src/common/dnnl_thread.hpp) but ships no header for it;
// this is its declaration, verbatim. With the OpenMP runtime it opens one `omp parallel` region of
// the current thread count (nthr == 0) and calls f(ithr, nthr) on every thread.
namespace dnnl::impl {
void parallel(int nthr, const std::function<void(int, int)>& f);
}  // namespace dnnl::impl

namespace anvil::onednn_detail {

void parallel_for(std::int64_t n, std::int64_t min_chunk,
                  const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (n <= 0) return;
  if (n < 2 * std::max<std::int64_t>(min_chunk, 1)) {
    body(0, n);
    return;
  }
  dnnl::impl::parallel(0, [&](int ithr, int nthr) {
    // Balanced split: the first n % nthr chunks get one extra item.
    const std::int64_t t = ithr, k = nthr, q = n / k, r = n % k;
    const std::int64_t begin = t * q + std::min(t, r);
    const std::int64_t end = begin + q + (t < r ? 1 : 0);
    if (begin < end) body(begin, end);
  });
}

}  // namespace anvil::onednn_detail
