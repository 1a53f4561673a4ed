# kernels: fused products. 4-bit products (fourbit.cmake), int8 products + LLM.int8() + dense (int8.cmake).
include(${PROJECT_SOURCE_DIR}/src/kernels/fourbit.cmake)
include(${PROJECT_SOURCE_DIR}/src/kernels/int8.cmake)
