# NF4/FP4/INT4 fused products: public entry points (matmul.c, routes INT8 to the int8 family),
# scalar reference, the tiled driver shared by the SIMD levels, and one unit per ISA.
list(APPEND MSBNB_SRC
  src/kernels/matmul.c
  src/kernels/matmul_4bit_ref.c
  src/kernels/matmul_4bit_tiled.c
  src/kernels/matmul_4bit_fast_int8.c
  src/kernels/onednn.c
  src/kernels/onednn_matmul.c
  src/kernels/matmul_bf16.c
)
list(APPEND MSBNB_SRC_AVX2 src/kernels/x86/matmul_4bit_avx2.c src/kernels/x86/matmul_4bit_avx2_int8.c
     src/kernels/x86/dq_scales_avx2.c)
list(APPEND MSBNB_SRC_AVX512 src/kernels/x86/matmul_4bit_avx512.c src/kernels/x86/dq_scales_avx512.c)
list(APPEND MSBNB_SRC_AVX512VNNI src/kernels/x86/matmul_4bit_avx512vnni.c)
list(APPEND MSBNB_SRC_AVX512BF16 src/kernels/x86/matmul_4bit_avx512bf16.c)
# AVX-VNNI (VEX vpdpbusd, 256-bit) FAST int8 loops for the AVX2 level: own flags, like the int8 unit.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  list(APPEND MSBNB_SRC src/kernels/x86/matmul_4bit_avxvnni.c)
  set_source_files_properties(src/kernels/x86/matmul_4bit_avxvnni.c PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavxvnni")
endif()
