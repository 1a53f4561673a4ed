# NF4/FP4, blockwise8, double quant, code tables
list(APPEND MSBNB_SRC
  ${CMAKE_SOURCE_DIR}/src/quant/codebooks.c
  ${CMAKE_SOURCE_DIR}/src/quant/fourbit.c
  ${CMAKE_SOURCE_DIR}/src/quant/blockwise8.c
  ${CMAKE_SOURCE_DIR}/src/quant/double_quant.c)
list(APPEND MSBNB_SRC_AVX2
  ${CMAKE_SOURCE_DIR}/src/quant/x86/fourbit_avx2.c
  ${CMAKE_SOURCE_DIR}/src/quant/x86/blockwise8_avx2.c)
list(APPEND MSBNB_SRC_AVX512
  ${CMAKE_SOURCE_DIR}/src/quant/x86/fourbit_avx512.c
  ${CMAKE_SOURCE_DIR}/src/quant/x86/blockwise8_avx512.c)
