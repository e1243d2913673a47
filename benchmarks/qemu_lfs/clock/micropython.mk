# For the heap probe's qemu build with LittleFS (docs/firmware.md): the qemu port has no wall clock, LittleFS's
# file times need mp_hal_time_ns. Built as a user C module: make ... USER_C_MODULES=<this repo>/benchmarks/qemu_lfs
CLOCK_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(CLOCK_MOD_DIR)/clock.c
