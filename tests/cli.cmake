# Command-line tests for the programs (rwkv-generate, rwkv-chat, rwkv-quantize, rwkv-info, and
# rwkv-server's flags): golden output, --help/--version, bad flags and exit statuses, missing files,
# compact number ranges in messages, installation, and a state round trip. Each runs
# tests/cli/check.cmake with a scenario name.
if(NOT RWKV_BUILD_EXAMPLES)
    return()
endif()
find_package(Python3 COMPONENTS Interpreter)
set(RWKV_CLI_CHECK ${CMAKE_CURRENT_SOURCE_DIR}/cli/check.cmake)
# Cross builds run the programs through the emulator (qemu-user), which CTest only puts in front
# of a test's own COMMAND; the scripts put it in front of every program they run. '|'-separated.
string(REPLACE ";" "|" RWKV_TEST_EMULATOR "${CMAKE_CROSSCOMPILING_EMULATOR}")
# rwkv-server is checked too when it is built (its own end-to-end tests are in server.cmake).
set(RWKV_CLI_SERVER "")
if(RWKV_BUILD_SERVER)
    set(RWKV_CLI_SERVER -DSERVER=$<TARGET_FILE:rwkv-server>)
endif()
foreach(scenario IN ITEMS generate_golden_greedy generate_bad_flags generate_missing_files
                          generate_state_round_trip generate_demo_model chat_scripted chat_bad_flags
                          generate_no_arguments generate_help_version generate_short_flags
                          generate_output_checked_first generate_prefill_progress chat_sigint install_programs
                          quantize_info_x052 help_version_all info_flags quantize_flags float_ranges
                          missing_files_all activations_flag)
    add_test(NAME cli_${scenario}
        COMMAND ${CMAKE_COMMAND} -DSCENARIO=${scenario}
            -DGENERATE=$<TARGET_FILE:rwkv-generate>
            -DCHAT=$<TARGET_FILE:rwkv-chat>
            -DQUANTIZE=$<TARGET_FILE:rwkv-quantize>
            -DINFO=$<TARGET_FILE:rwkv-info>
            ${RWKV_CLI_SERVER}
            -DFIXTURES=${RWKV_FIXTURES_DIR}
            -DPYTHON=${Python3_EXECUTABLE}
            -DBUILD_DIR=${PROJECT_BINARY_DIR}
            -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli-work/${scenario}
            -DEMULATOR=${RWKV_TEST_EMULATOR}
            -P ${RWKV_CLI_CHECK})
endforeach()
