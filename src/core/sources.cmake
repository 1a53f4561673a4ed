# core: status and errors, aligned memory, CPU detection and dispatch level, threads, half precision.
list(APPEND MSBNB_SRC
  src/core/status.c
  src/core/memory.c
  src/core/cpu.c
  src/core/threads.c
  src/core/half.c
)
