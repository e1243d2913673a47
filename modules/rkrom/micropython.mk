# User C module `rkrom` for MicroPython's make-based ports: a ROMFS image in the firmware (see mod_rkrom.c).
# RKROM_IMAGE: the generated C file holding the image (reku firmware build writes it into its build folder);
# without it the module is built with no image.
RKROM_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(RKROM_MOD_DIR)/mod_rkrom.c
ifneq ($(RKROM_IMAGE),)
SRC_USERMOD_C += $(RKROM_IMAGE)
CFLAGS_USERMOD += -DRKROM_HAVE_IMAGE
endif
