# model: the reference LLaMA. Inference (infer.cmake) and training (train.cmake).
include(${PROJECT_SOURCE_DIR}/src/model/infer.cmake)
include(${PROJECT_SOURCE_DIR}/src/model/train.cmake)
include(${PROJECT_SOURCE_DIR}/src/model/calibrate.cmake)
