# Entry point for USER_C_MODULES=/abs/path/to/reku/modules/micropython.cmake (rp2, esp32 ports).
include(${CMAKE_CURRENT_LIST_DIR}/rkernel/micropython.cmake)
