# Error-minimising quantizers (scale search, GPTQ) writing the standard 4-bit formats
list(APPEND MSBNB_SRC
  ${PROJECT_SOURCE_DIR}/src/quant/scale_search.c
  ${PROJECT_SOURCE_DIR}/src/quant/gptq.c
  ${PROJECT_SOURCE_DIR}/src/quant/quantize_method.c)
