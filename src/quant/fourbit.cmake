# NF4/FP4, blockwise8, double quant, code tables
list(APPEND MSBNB_SRC
  ${PROJECT_SOURCE_DIR}/src/quant/codebooks.c
  ${PROJECT_SOURCE_DIR}/src/quant/fourbit.c
  ${PROJECT_SOURCE_DIR}/src/quant/blockwise8.c
  ${PROJECT_SOURCE_DIR}/src/quant/double_quant.c)
list(APPEND MSBNB_SRC_AVX2
  ${PROJECT_SOURCE_DIR}/src/quant/x86/fourbit_avx2.c
  ${PROJECT_SOURCE_DIR}/src/quant/x86/blockwise8_avx2.c)
list(APPEND MSBNB_SRC_AVX512
  ${PROJECT_SOURCE_DIR}/src/quant/x86/fourbit_avx512.c
  ${PROJECT_SOURCE_DIR}/src/quant/x86/blockwise8_avx512.c)
