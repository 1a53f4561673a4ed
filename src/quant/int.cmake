# INT8, INT4, qtensor object, functional API, statistics
list(APPEND MSBNB_SRC
  ${PROJECT_SOURCE_DIR}/src/quant/int8.c
  ${PROJECT_SOURCE_DIR}/src/quant/int4.c
  ${PROJECT_SOURCE_DIR}/src/quant/qtensor.c
  ${PROJECT_SOURCE_DIR}/src/quant/qtensor_convert.c
  ${PROJECT_SOURCE_DIR}/src/quant/stats.c)
list(APPEND MSBNB_SRC_AVX2 ${PROJECT_SOURCE_DIR}/src/quant/x86/int_avx2.c)
list(APPEND MSBNB_SRC_AVX512 ${PROJECT_SOURCE_DIR}/src/quant/x86/int_avx512.c)
