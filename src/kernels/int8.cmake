# INT8 products, LLM.int8(), dense fp32 (owner: kern8). Paths relative to the project root.
list(APPEND MSBNB_SRC
  src/kernels/dense.c
  src/kernels/matmul_int8.c
  src/kernels/matmul_int8_ref.c
  src/kernels/llm_int8.c
)
list(APPEND MSBNB_SRC_AVX2 src/kernels/x86/matmul_int8_avx2.c)
list(APPEND MSBNB_SRC_AVX512 src/kernels/x86/matmul_int8_avx512.c)
list(APPEND MSBNB_SRC_AVX512VNNI src/kernels/x86/matmul_int8_avx512vnni.c)
# AVX-VNNI (VEX vpdpbusd) needs its own flag, outside the standard ISA lists; dispatched at the AVX2
# level when the CPU reports it.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  list(APPEND MSBNB_SRC src/kernels/x86/matmul_int8_avxvnni.c)
  set_source_files_properties(src/kernels/x86/matmul_int8_avxvnni.c PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavxvnni")
endif()
