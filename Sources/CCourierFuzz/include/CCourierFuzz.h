#ifndef COURIER_CCOURIERFUZZ_H
#define COURIER_CCOURIERFUZZ_H
// C entry points the fuzz harnesses need and no public header declares.

#include <stddef.h>
#include <stdint.h>

struct __natsMsg;

/// A nats.c message made from the payload of an `HMSG` frame as the server sends it: the first
/// `header_length` bytes of `bytes` are the header block (`NATS/1.0\r\n...`), the rest the body.
/// nats.c reads that block only when the headers are first asked for, with the very code that
/// reads messages off the socket, so a harness can feed it any block without a server.
/// Returns nats.c's status (0 is NATS_OK); release the message with `natsMsg_Destroy`.
int courier_fuzz_nats_message_from_wire(
    struct __natsMsg **message,
    const char *subject,
    const char *bytes,
    int length,
    int header_length);

/// libFuzzer's entry for a program that has its own `main`: runs the fuzzing loop with
/// `callback` as the target and libFuzzer's usual flags in `argv` (libclang_rt.fuzzer has it;
/// only builds with `-sanitize=fuzzer` may call it).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
