#include "CCourierFuzz.h"

#include <string.h>
#include <nats/nats.h>

// nats.c's constructor for a message read off the socket, as src/msg.h of nats.c 3.4 (the version
// Debian ships) declares it: libnats exports it, its public header does not.
natsStatus natsMsg_create(
    natsMsg **newMsg,
    const char *subject, int subjLen,
    const char *reply, int replyLen,
    const char *buf, int bufLen, int hdrLen);

int courier_fuzz_nats_message_from_wire(
    struct __natsMsg **message,
    const char *subject,
    const char *bytes,
    int length,
    int header_length)
{
    // natsMsg_create trusts its lengths (the protocol parser checked them): a body of negative
    // length would be a memcpy of it.
    if (length < 0 || header_length < 0 || header_length > length)
        return NATS_INVALID_ARG;
    // The error stack that header parsing writes to is thread-local state the library sets up
    // in nats_Open; a connection opens it implicitly, a bare message does not.
    natsStatus status = nats_Open(-1);
    if (status != NATS_OK)
        return status;
    return natsMsg_create(message, subject, (int) strlen(subject), NULL, 0, bytes, length, header_length);
}
