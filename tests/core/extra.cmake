# The threads test compares with omp_get_max_threads() directly: link the OpenMP runtime.
target_link_libraries(${exe} PRIVATE ${OpenMP_CXX_LIBRARIES})
