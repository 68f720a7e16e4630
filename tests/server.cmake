# rwkv-server end to end (tests/server/test_server.py): each scenario starts the server on a free loopback
# port with the demo model and drives it with curl, Python's http.client and (when installed) the official
# openai client. Scenarios: flags, completion (= rwkv-generate), streaming, chat_cache (second turn from the
# state cache), concurrent (8 clients), errors (4xx in OpenAI's shape), limits
# (timeout 408, queue full 429), cancel (client leaves mid-stream),
# sigterm (graceful shutdown), openai (skipped when the package is absent).
if(NOT RWKV_BUILD_EXAMPLES OR NOT RWKV_BUILD_SERVER)
    return()
endif()
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
    message(STATUS "server tests: python3 not found, not registered")
    return()
endif()
foreach(scenario IN ITEMS flags completion streaming chat_cache concurrent errors limits cancel sigterm
                        openai)
    add_test(NAME server_${scenario}
        COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/server/test_server.py ${scenario}
            --server $<TARGET_FILE:rwkv-server> --generate $<TARGET_FILE:rwkv-generate>)
    set_tests_properties(server_${scenario} PROPERTIES TIMEOUT 180)
endforeach()
set_tests_properties(server_openai PROPERTIES SKIP_RETURN_CODE 77)
