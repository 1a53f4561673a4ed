include(${PROJECT_SOURCE_DIR}/tests/model/infer.cmake)
include(${PROJECT_SOURCE_DIR}/tests/model/train.cmake)
