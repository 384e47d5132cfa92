# Serialization tests cross-check Anvil's hand-written encoder/decoder against protobuf's generated
# classes for the same schema (compiled into libanvil from serialization/proto/checkpoint.proto).
target_link_libraries(${exe} PRIVATE protobuf::libprotobuf)
target_include_directories(${exe} PRIVATE ${PROJECT_BINARY_DIR}/proto ${PROJECT_BINARY_DIR}/proto/serialization/proto)
target_compile_definitions(${exe} PRIVATE ANVIL_PROTOC="${Protobuf_PROTOC_EXECUTABLE}")
# The CLI test runs the `anvil` executable (tools/), built before the tests.
if(EXISTS ${PROJECT_SOURCE_DIR}/tools/CMakeLists.txt)
  add_dependencies(${exe} anvil_cli)
  target_compile_definitions(${exe} PRIVATE ANVIL_CLI="$<TARGET_FILE:anvil_cli>")
endif()
