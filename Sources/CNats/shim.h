#ifndef COURIER_CNATS_SHIM_H
#define COURIER_CNATS_SHIM_H
// nats.c, the official NATS C client (Debian: libnats-dev).
#include <nats/nats.h>
#endif
