# The packaging test drives CMake itself: it needs the same cmake, compiler, generator and build type.
target_compile_definitions(${exe} PRIVATE
  ANVIL_CMAKE_COMMAND="${CMAKE_COMMAND}"
  ANVIL_CXX_COMPILER="${CMAKE_CXX_COMPILER}"
  ANVIL_CMAKE_GENERATOR="${CMAKE_GENERATOR}"
  ANVIL_BUILD_TYPE="${CMAKE_BUILD_TYPE}")
