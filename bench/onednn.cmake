list(APPEND MSBNB_BENCH_SRC ${PROJECT_SOURCE_DIR}/bench/bench_onednn.c)
