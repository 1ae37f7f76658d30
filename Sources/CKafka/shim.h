#ifndef COURIER_CKAFKA_SHIM_H
#define COURIER_CKAFKA_SHIM_H
// librdkafka, the Kafka C client (Debian: librdkafka-dev).
#include <librdkafka/rdkafka.h>

// librdkafka's logical partition and offsets are cast macros, which Swift does not import.
static const int32_t courier_kafka_partition_unassigned = RD_KAFKA_PARTITION_UA;
static const int64_t courier_kafka_offset_beginning = RD_KAFKA_OFFSET_BEGINNING;
static const int64_t courier_kafka_offset_end = RD_KAFKA_OFFSET_END;

// rd_kafka_producev is variadic, which Swift cannot call: one record, every field explicit.
// `value` NULL with `value_size` 0 is a record without a value (a tombstone); `partition`
// RD_KAFKA_PARTITION_UA lets the partitioner choose; `timestamp` 0 means now. The headers are
// owned by librdkafka once the call succeeds (and still the caller's when it fails).
static inline rd_kafka_resp_err_t courier_kafka_produce(
    rd_kafka_t *rk,
    const char *topic,
    int32_t partition,
    const void *key, size_t key_size,
    void *value, size_t value_size,
    int64_t timestamp,
    rd_kafka_headers_t *headers,
    void *opaque
) {
    return rd_kafka_producev(
        rk,
        RD_KAFKA_V_TOPIC(topic),
        RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_size),
        RD_KAFKA_V_VALUE(value, value_size),
        RD_KAFKA_V_TIMESTAMP(timestamp),
        RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE(opaque),
        RD_KAFKA_V_END
    );
}
#endif
