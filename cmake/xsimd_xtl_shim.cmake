# Debian 12's xsimd 8.1 exports `INTERFACE_LINK_LIBRARIES xtl` without finding xtl, so linking
# anything against the xsimd target asks the linker for -lxtl. xsimd itself does not need xtl:
# use the real target when xtl is installed, otherwise give the name an empty target.
if(TARGET xsimd AND NOT TARGET xtl)
    find_package(xtl QUIET CONFIG)
    if(NOT TARGET xtl)
        add_library(xtl INTERFACE IMPORTED)
    endif()
endif()
