# NF4/FP4, blockwise8, double quant, code tables
list(APPEND MSBNB_SRC
  ${CMAKE_SOURCE_DIR}/src/quant/codebooks.c
  ${CMAKE_SOURCE_DIR}/src/quant/fourbit.c
  ${CMAKE_SOURCE_DIR}/src/quant/blockwise8.c
  ${CMAKE_SOURCE_DIR}/src/quant/double_quant.c)
