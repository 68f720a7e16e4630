# Cross-compiling rwkv for 64-bit ARM (aarch64) on an x86-64 Debian 12 host, tests run under
# qemu-user. Needs Debian's g++-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user
# (tools/setup-debian.sh --aarch64). Used by tools/test-aarch64.sh:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(RWKV_AARCH64_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${RWKV_AARCH64_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${RWKV_AARCH64_TRIPLE}-g++)

# The target's libraries (libc, libstdc++) live in the cross prefix; qemu loads them from there.
set(RWKV_AARCH64_PREFIX /usr/${RWKV_AARCH64_TRIPLE})
find_program(RWKV_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
# CTest runs add_test(NAME x COMMAND <target>) through this; tests/cli.cmake passes it on to the
# programs its scripts run.
# LD_LIBRARY_PATH puts the cross prefix's libc ahead of Debian's multiarch one: the dynamic loader
# comes from the prefix (-L), and with zlib1g-dev:arm64 installed its default search finds
# libc6:arm64 in /lib/aarch64-linux-gnu first, a different build of glibc 2.36 whose private
# structures do not match that loader's. That mix hung the first pthread_create of every
# multi-threaded test (an endless walk of the loader's thread-stack cache list).
set(CMAKE_CROSSCOMPILING_EMULATOR ${RWKV_QEMU_AARCH64} -L ${RWKV_AARCH64_PREFIX} -E
    LD_LIBRARY_PATH=${RWKV_AARCH64_PREFIX}/lib)

# Libraries are looked up only for the target; programs (python3, clang++) only on the host. The
# target's libraries come from two places: the cross prefix (libc, libstdc++) and Debian's multiarch
# folder /usr/lib/aarch64-linux-gnu, where `apt-get install zlib1g-dev:arm64` puts the arm64 zlib
# (a root of / is searched there because CMake derives the library architecture from the compiler).
set(CMAKE_FIND_ROOT_PATH ${RWKV_AARCH64_PREFIX} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# The header-only dependencies (Eigen, xsimd, Catch2, nlohmann-json) are architecture-independent:
# their headers in /usr/include and their CMake package files are the host's, found as usual.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Debian keeps xsimd's package file under the host's multiarch libdir, which a search for an
# aarch64 package does not visit.
if(NOT xsimd_DIR)
    file(GLOB _rwkv_xsimd_config /usr/lib/*-linux-gnu*/cmake/xsimd/xsimdConfig.cmake)
    if(_rwkv_xsimd_config)
        list(GET _rwkv_xsimd_config 0 _rwkv_xsimd_config)
        get_filename_component(_rwkv_xsimd_dir ${_rwkv_xsimd_config} DIRECTORY)
        set(xsimd_DIR ${_rwkv_xsimd_dir} CACHE PATH "xsimd package folder (host's, header-only)")
    endif()
endif()

# /usr/include is searched *after* the cross compiler's own system headers (-idirafter), never
# before them as the packages' -isystem /usr/include would (that puts the host's glibc headers
# ahead of the target's). The compiler then reports /usr/include as an implicit include folder,
# so CMake drops the packages' -isystem /usr/include.
set(CMAKE_C_FLAGS_INIT "-idirafter /usr/include")
set(CMAKE_CXX_FLAGS_INIT "-idirafter /usr/include")
