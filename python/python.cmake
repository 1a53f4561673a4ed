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

# Tests: pytest (tests/python) and the Python examples against this build tree, in the cached venv
# of scripts/pyvenv.sh (created once by the python_venv fixture), and `pip install .` itself
# (scripts/pip_install_check.sh). Not under sanitizers: a ctypes-loaded library would need the
# sanitizer runtime preloaded into the interpreter.
if(MSBNB_BUILD_TESTS AND NOT MSBNB_SANITIZE)
  set(MSBNB_PY_ENV "OMP_WAIT_POLICY=passive" "MSBNB_SHARED_DIR=${MSBNB_SHARED_DIR}"
                   "MSBNB_BIN=$<TARGET_FILE:msbnb_cli>")
  add_test(NAME python_venv COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pyvenv.sh)
  set_tests_properties(python_venv PROPERTIES FIXTURES_SETUP msbnb_pyvenv)
  foreach(part core mindspore)
    add_test(NAME python_pytest_${part} COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pytest.sh ${PROJECT_BINARY_DIR}
             ${PROJECT_SOURCE_DIR}/tests/python)
    set_tests_properties(python_pytest_${part} PROPERTIES FIXTURES_REQUIRED msbnb_pyvenv LABELS python
                         ENVIRONMENT "${MSBNB_PY_ENV};MSBNB_PYTEST_PART=${part}")
  endforeach()
  foreach(name functional_api basic_usage model_conversion)
    add_test(NAME example_py_${name} COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pytest.sh --run
             ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}/examples/python/${name}.py)
  endforeach()
  # the QLoRA example, short: the loss falls, the PEFT adapter is written and `msbnb generate
  # --adapter` reads it (the default run is the long one, for users)
  add_test(NAME example_py_qlora_training COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pytest.sh --run
           ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}/examples/python/qlora_training.py --steps 30
           --train-chars 40000 --require-cli --out ${PROJECT_BINARY_DIR}/example-qlora-adapter)
  add_test(NAME python_pip_install COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/pip_install_check.sh
           ${PROJECT_BINARY_DIR})
  set_tests_properties(example_py_functional_api example_py_basic_usage example_py_model_conversion
                       example_py_qlora_training python_pip_install
                       PROPERTIES FIXTURES_REQUIRED msbnb_pyvenv ENVIRONMENT "${MSBNB_PY_ENV}")
  # `make test-isa` leaves these out: `pip install .` builds the whole library again (minutes on 2
  # cores), and the Python suites run the same C kernels that the C tests already cover at every ISA
  # level (label python).
  set_tests_properties(python_pip_install PROPERTIES LABELS install)
  set_tests_properties(example_py_functional_api example_py_basic_usage example_py_model_conversion
                       example_py_qlora_training PROPERTIES LABELS python)
endif()
