include(${CMAKE_SOURCE_DIR}/tests/model/infer.cmake)
include(${CMAKE_SOURCE_DIR}/tests/model/train.cmake)
