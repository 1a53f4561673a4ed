# Calibration-aware quantization of a checkpoint: layer-by-layer statistics, AWQ fold, GPTQ
list(APPEND MSBNB_SRC
  src/model/calibrate.c
  src/model/awq.c
)
