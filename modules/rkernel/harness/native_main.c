/* The harness on the host, with the C library. */
#include <unistd.h>
void rk_harness(void);
void rk_out(const char *s, int n) { write(1, s, n); }
int main(void) { rk_harness(); return 0; }
