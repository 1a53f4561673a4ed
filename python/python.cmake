# The Python package's native library (python/msbnb, loaded with ctypes by msbnb/_native.py):
# every python/src/*.c — the flat shim msbnb_py.c and any further entry points (e.g. MindSpore
# custom operators) — linked with libmsbnb (static) into ONE shared library,
# <build>/python/msbnb/_msbnb_native.so. Only symbols marked visible in python/src are exported
# (the static library's own symbols stay hidden: --exclude-libs).
file(GLOB MSBNB_PY_SRC CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/python/src/*.c)
add_library(msbnb_py MODULE ${MSBNB_PY_SRC})
set_target_properties(msbnb_py PROPERTIES OUTPUT_NAME _msbnb_native PREFIX "" SUFFIX ".so"
                                          C_VISIBILITY_PRESET hidden
                                          LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/python/msbnb)
target_compile_options(msbnb_py PRIVATE ${MSBNB_WARNINGS})
target_link_libraries(msbnb_py PRIVATE msbnb_static)
target_link_options(msbnb_py PRIVATE -Wl,--exclude-libs,ALL)
if(NOT MSBNB_SANITIZE) # clang leaves the sanitizer runtime to the executable
  target_link_options(msbnb_py PRIVATE -Wl,--no-undefined)
endif()
if(SKBUILD)
  # pip install . (scikit-build-core): the library goes into the package directory of the wheel
  install(TARGETS msbnb_py LIBRARY DESTINATION msbnb)
endif()
