# User C module `rkernel` for MicroPython's CMake-based ports (rp2, esp32):
#   make -C ports/rp2 BOARD=RPI_PICO USER_C_MODULES=/abs/path/to/reku/modules/micropython.cmake
add_library(usermod_rkernel INTERFACE)

target_sources(usermod_rkernel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_rkernel.c
    ${CMAKE_CURRENT_LIST_DIR}/rk_core.c
)

target_include_directories(usermod_rkernel INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_rkernel)
