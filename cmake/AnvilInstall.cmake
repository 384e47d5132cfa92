# cmake --install: headers under include/anvil (same relative paths as in the tree), the library,
# and AnvilConfig.cmake exporting Anvil::anvil for find_package(Anvil).
include(CMakePackageConfigHelpers)
install(TARGETS anvil EXPORT AnvilTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir framework callbacks serialization models)
  install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/anvil/${dir}
    FILES_MATCHING PATTERN "*.h")
endforeach()
install(EXPORT AnvilTargets NAMESPACE Anvil:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Anvil)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/AnvilConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/AnvilConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Anvil)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/AnvilConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/AnvilConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/AnvilConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Anvil)
