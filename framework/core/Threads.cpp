#include "framework/core/Threads.h"

#include <omp.h>  // GCC's header; the library links libgomp (the runtime oneDNN uses) without -fopenmp

#include "framework/core/Error.h"

namespace anvil {

void set_num_threads(int n) {
  ANVIL_CHECK(n >= 1, "set_num_threads: the number of threads must be >= 1, got {}", n);
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace anvil
