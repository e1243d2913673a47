#include <stdint.h>
// the qemu port has no wall clock: LittleFS's file times read 0 (for a heap measurement only)
uint64_t mp_hal_time_ns(void) { return 0; }
