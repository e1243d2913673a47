# User C module `rkernel` for MicroPython's make-based ports (unix, ...):
#   make -C ports/unix USER_C_MODULES=/abs/path/to/reku/modules
RKERNEL_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(RKERNEL_MOD_DIR)/mod_rkernel.c $(RKERNEL_MOD_DIR)/rk_core.c
CFLAGS_USERMOD += -I$(RKERNEL_MOD_DIR)
