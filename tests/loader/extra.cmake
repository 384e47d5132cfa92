# The loader tests write gzip-compressed IDX fixtures themselves, so they call zlib directly.
target_link_libraries(${exe} PRIVATE ZLIB::ZLIB)
