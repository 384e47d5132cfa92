// Threads: the size of the compute thread pool (oneDNN's OpenMP workers), MindSpore
// set_context(... ) / torch.set_num_threads style.
#pragma once

namespace anvil {

/// Sets how many OpenMP threads the CPU backend's parallel regions use (omp_set_num_threads), i.e.
/// the size of oneDNN's pool for ops launched afterwards. OpenMP keeps this setting per thread: it
/// applies to ops run from the CALLING thread (call it on the thread that trains, usually main);
/// threads created later start from OMP_NUM_THREADS / the OpenMP default. The DataLoader's worker
/// threads do not use OpenMP.
/// Precondition: n >= 1. Errors: anvil::Error naming n otherwise (nothing changed).
void set_num_threads(int n);

/// The number of OpenMP threads a parallel region started from the calling thread would use
/// (omp_get_max_threads): set_num_threads's value, else OMP_NUM_THREADS, else the number of cores.
int get_num_threads();

}  // namespace anvil
