# ANVIL_CUDA=AUTO|ON|OFF. AUTO turns the CUDA backend on only when nvcc and cuDNN are both found;
# ON fails the configure when they are missing; OFF never looks. The build never requires CUDA.
set(ANVIL_WITH_CUDA OFF)
if(NOT ANVIL_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  set(_anvil_cudnn_found OFF)
  if(CMAKE_CUDA_COMPILER)
    get_filename_component(_anvil_cuda_root "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(_anvil_cuda_root "${_anvil_cuda_root}" DIRECTORY)
    find_path(ANVIL_CUDNN_INCLUDE cudnn.h HINTS ${_anvil_cuda_root}/include /usr/include)
    find_library(ANVIL_CUDNN_LIBRARY cudnn HINTS ${_anvil_cuda_root}/lib64 ${_anvil_cuda_root}/lib /usr/lib/x86_64-linux-gnu)
    if(ANVIL_CUDNN_INCLUDE AND ANVIL_CUDNN_LIBRARY)
      set(_anvil_cudnn_found ON)
    endif()
  endif()
  # Sanitizer builds (ANVIL_SANITIZE) pass -fsanitize to every compiler, nvcc included, which it rejects;
  # GPU code is checked with compute-sanitizer instead. AUTO therefore leaves CUDA out of them.
  set(_anvil_sanitized OFF)
  if(DEFINED ANVIL_SANITIZE AND NOT ANVIL_SANITIZE STREQUAL "OFF" AND ANVIL_SANITIZE)
    set(_anvil_sanitized ON)
  endif()
  if(CMAKE_CUDA_COMPILER AND _anvil_cudnn_found AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/framework/backend/cuda
     AND NOT _anvil_sanitized)
    set(ANVIL_WITH_CUDA ON)
  elseif(ANVIL_CUDA STREQUAL "ON")
    message(FATAL_ERROR "ANVIL_CUDA=ON but nvcc, cuDNN or the CUDA backend sources were not found, or "
                        "ANVIL_SANITIZE=${ANVIL_SANITIZE} is set (CPU sanitizers cannot instrument nvcc code)")
  elseif(_anvil_sanitized AND CMAKE_CUDA_COMPILER)
    message(STATUS "Anvil CUDA backend left out of the ANVIL_SANITIZE=${ANVIL_SANITIZE} build")
  endif()
endif()
message(STATUS "Anvil CUDA backend: ${ANVIL_WITH_CUDA} (ANVIL_CUDA=${ANVIL_CUDA})")
if(ANVIL_WITH_CUDA)
  # enable_language must run at file scope. Explicit architecture: `native` fails on a machine without a
  # GPU; 90 = H100/H200 (what CI builds). Pass -DCMAKE_CUDA_ARCHITECTURES=... for other GPUs.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
endif()

# Attaches the CUDA backend (framework/backend/cuda: .cpp host code + .cu kernels) to `target`.
# Called by the top-level CMakeLists.txt only when ANVIL_WITH_CUDA is ON.
function(anvil_add_cuda_backend target)
  if(NOT TARGET Anvil::cudnn)
    add_library(Anvil::cudnn UNKNOWN IMPORTED)
    set_target_properties(Anvil::cudnn PROPERTIES IMPORTED_LOCATION "${ANVIL_CUDNN_LIBRARY}"
                          INTERFACE_INCLUDE_DIRECTORIES "${ANVIL_CUDNN_INCLUDE}")
  endif()
  file(GLOB _anvil_cuda_sources CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/framework/backend/cuda/*.cpp ${PROJECT_SOURCE_DIR}/framework/backend/cuda/*.cu)
  target_sources(${target} PRIVATE ${_anvil_cuda_sources})
  set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
                        CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON CUDA_SEPARABLE_COMPILATION OFF)
  # .cu files are C++17 (CMake 3.25 knows no CUDA20 flag for nvcc); they include only CudaKernels.h/CudaCheck.h.
  # The .cpp files get -Wall -Wextra from ANVIL_WARNINGS (CXX only); nvcc forwards the same to the host
  # compiler for the .cu files.
  # --fmad=false: no fused multiply-add contraction, so the kernels round like the host reference backend
  # (the conformance tests compare float64 results at 1e-12; the kernels are memory-bound, FMA buys little).
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra --fmad=false>)
  target_link_libraries(${target} PRIVATE CUDA::cudart CUDA::cublas Anvil::cudnn)
  # Public: tests and benchmarks know the backend is compiled in (and framework/core reports it).
  target_compile_definitions(${target} PUBLIC ANVIL_WITH_CUDA=1)
endfunction()
