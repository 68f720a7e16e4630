# The C API (librwkv.so): a C11 test program and a Python ctypes smoke test, both on the demo model.
if(NOT RWKV_BUILD_C_API)
    return()
endif()
enable_language(C)
set(RWKV_TEST_MODEL ${PROJECT_SOURCE_DIR}/examples/models/demo-x060-L4-D128-fortunes.pth)

add_executable(test_c_api ${CMAKE_CURRENT_SOURCE_DIR}/c/test_c_api.c)
set_target_properties(test_c_api PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
target_link_libraries(test_c_api PRIVATE rwkv::c m)
target_compile_options(test_c_api PRIVATE -Wall -Wextra -Wpedantic $<$<BOOL:${RWKV_WARNINGS_AS_ERRORS}>:-Werror>)
if(RWKV_SANITIZE)
    target_compile_options(test_c_api PRIVATE -fsanitize=address,undefined)
    target_link_options(test_c_api PRIVATE -fsanitize=address,undefined)
endif()
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/c-work)
add_test(NAME c_api COMMAND test_c_api ${RWKV_TEST_MODEL} ${CMAKE_CURRENT_BINARY_DIR}/c-work)

# A sanitized librwkv.so cannot be loaded into an uninstrumented python3.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND AND NOT RWKV_SANITIZE)
    add_test(NAME python_ctypes
        COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/python/test_ctypes.py
            $<TARGET_FILE:rwkv_c> ${RWKV_TEST_MODEL})
endif()
