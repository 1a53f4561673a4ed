# model: the reference LLaMA. Inference (infer.cmake) and training (train.cmake).
include(${CMAKE_SOURCE_DIR}/src/model/infer.cmake)
include(${CMAKE_SOURCE_DIR}/src/model/train.cmake)
include(${CMAKE_SOURCE_DIR}/src/model/calibrate.cmake)
