list(APPEND MSBNB_BENCH_SRC ${CMAKE_SOURCE_DIR}/bench/bench_parsers.c)
