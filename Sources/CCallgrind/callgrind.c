#include "ccallgrind.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>

void courier_callgrind_start(void) {
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_ZERO_STATS;
}

void courier_callgrind_stop(const char *name) {
    CALLGRIND_DUMP_STATS_AT(name);
    CALLGRIND_STOP_INSTRUMENTATION;
}

int courier_running_on_valgrind(void) {
    return RUNNING_ON_VALGRIND ? 1 : 0;
}
#else
void courier_callgrind_start(void) {}
void courier_callgrind_stop(const char *name) { (void)name; }
int courier_running_on_valgrind(void) { return 0; }
#endif
