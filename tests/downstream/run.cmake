# Installs rwkv into a temp prefix, then configures, builds and runs a consumer project.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGN}")
    endif()
endfunction()
run(${CMAKE_COMMAND} --install ${RWKV_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix
    -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
# The demo model ships with the sources (and is installed), so this never needs the fixtures.
run(${WORK_DIR}/build/consumer ${DEMO_MODEL} ${WORK_DIR}/consumer.session)
if(EXISTS ${WORK_DIR}/build/consumer_c)
    run(${WORK_DIR}/build/consumer_c ${DEMO_MODEL})
endif()
