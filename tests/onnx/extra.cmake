# ONNX tests read exported files back with ONNX's own protobuf classes and run onnx::checker and strict
# shape inference on them. ONNX's generated setters raise a false -Wrestrict with g++ 12 (C++20).
target_link_libraries(${exe} PRIVATE onnx onnx_proto protobuf::libprotobuf)
set_source_files_properties(${srcs} PROPERTIES COMPILE_OPTIONS "-Wno-restrict")
