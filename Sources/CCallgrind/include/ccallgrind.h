#ifndef CCALLGRIND_H
#define CCALLGRIND_H

// Callgrind's client requests as functions Swift can call: valgrind's macros are inline assembly,
// which Swift cannot import. Without valgrind's headers (a machine that never measures) they do
// nothing; outside valgrind they are a few no-op instructions.

/// Zeroes the counters and starts counting (run under `--instr-atstart=no`).
void courier_callgrind_start(void);
/// Stops counting and writes the counts since `courier_callgrind_start` as a dump named `name`.
void courier_callgrind_stop(const char *name);
/// 1 when the program runs under valgrind.
int courier_running_on_valgrind(void);

#endif
