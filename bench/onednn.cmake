list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_onednn.c)
list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_onednn_int8.c)
list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_onednn_dense.c)
