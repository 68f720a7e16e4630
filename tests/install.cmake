# A downstream project must be able to find_package(rwkv CONFIG) from an installed prefix and
# link rwkv::rwkv. This test installs into a temporary prefix and builds tests/downstream.
add_test(NAME downstream_find_package
    COMMAND ${CMAKE_COMMAND}
        -DRWKV_BINARY_DIR=${PROJECT_BINARY_DIR}
        -DDOWNSTREAM_SOURCE=${CMAKE_CURRENT_SOURCE_DIR}/downstream
        -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/downstream-work
        -DFIXTURES=${RWKV_FIXTURES_DIR}
        -DDEMO_MODEL=${PROJECT_SOURCE_DIR}/examples/models/demo-x060-L4-D128-fortunes.pth
        -P ${CMAKE_CURRENT_SOURCE_DIR}/downstream/run.cmake)
