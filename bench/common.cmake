list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_common.c ${PROJECT_SOURCE_DIR}/bench/bench_record.c)
# The AVX-512 probe loops get AVX-512 flags on x86 (bench/CMakeLists.txt); elsewhere the same file
# compiles to its portable fallback.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  list(APPEND MSBNB_BENCH_SRC_AVX512 ${PROJECT_SOURCE_DIR}/bench/bench_simd_avx512.c)
else()
  list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_simd_avx512.c)
endif()
