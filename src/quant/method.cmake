# Error-minimising quantizers (scale search, GPTQ) writing the standard 4-bit formats
list(APPEND MSBNB_SRC
  ${CMAKE_SOURCE_DIR}/src/quant/scale_search.c
  ${CMAKE_SOURCE_DIR}/src/quant/gptq.c
  ${CMAKE_SOURCE_DIR}/src/quant/quantize_method.c)
