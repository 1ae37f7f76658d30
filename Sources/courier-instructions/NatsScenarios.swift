import CCallgrind
import CNats
import Courier
import CourierNATS
import Dispatch
import Foundation

// NATS core round trips through a real nats-server (`COURIER_NATS_URL`; scripts/instructions.py
// starts one when it is unset): a publish, the server's delivery, the handler. Each message is
// sent once the previous one was handled, so a count is one publish and one consume, every
// thread of the process included (nats.c's reader and flusher too); the server is another
// process and not counted.

/// Opens nats.c without lock spinning, before the first connection. Valgrind runs one thread at a
/// time, so a thread spinning on a lock held by another can never see it released and spins to
/// the limit (2,000 tries, ~26,000 instructions per contended lock): counts of the scheduler, not
/// of the work, and different from run to run. Both NATS scenarios run so.
func openNatsWithoutSpinning() throws {
    let status = nats_Open(0)
    guard status == NATS_OK else { throw HarnessError("nats_Open: \(String(cString: natsStatus_GetText(status)))") }
}

/// The URL the NATS scenarios connect to.
var natsURL: String { ProcessInfo.processInfo.environment["COURIER_NATS_URL"] ?? "nats://127.0.0.1:4222" }

/// Courier untraced: `publish(_:to:)` of a `String` and a subscriber decoding it.
func runNatsCore(messages: Int) async throws {
    try openNatsWithoutSpinning()
    let broker = try NatsBroker(url: natsURL)
    let subject = "courier.instructions.core"
    let handled = HandledSignal()
    broker.subscriber(subject) { (_: String, _) in handled.signal() }
    let running = Task { try await broker.run() }
    await broker.waitUntilSubscribed()

    func send(_ count: Int) async throws {
        for _ in 0..<count {
            try await broker.publish("order placed", to: subject)
            await handled.wait()
        }
    }
    try await send(200)
    courier_callgrind_start()
    try await send(messages)
    courier_callgrind_stop(Scenario.natsCore.rawValue)

    await broker.stopIntake()
    running.cancel()
    _ = try? await running.value
}

/// What the raw scenario's callback hands back to the sending thread.
private final class RawArrivals: Sendable {
    let arrived = DispatchSemaphore(value: 0)
}

/// nats.c alone, doing what Courier does with a message: the same three headers Courier writes
/// (content type, correlation id, message id) added to the published message and read back on
/// delivery with the body, on an asynchronous subscription.
func runNatsCoreRaw(messages: Int) throws {
    func check(_ status: natsStatus, _ what: String) throws {
        guard status == NATS_OK else { throw HarnessError("nats.c \(what): \(String(cString: natsStatus_GetText(status)))") }
    }
    try openNatsWithoutSpinning()
    var options: OpaquePointer?
    try check(natsOptions_Create(&options), "options")
    defer { natsOptions_Destroy(options) }
    try check(natsOptions_SetURL(options, natsURL), "url")
    // As Courier connects: each publish written at once.
    try check(natsOptions_SetSendAsap(options, true), "send asap")
    var connection: OpaquePointer?
    try check(natsConnection_Connect(&connection, options), "connect")
    defer { natsConnection_Destroy(connection) }

    let arrivals = RawArrivals()
    let closure = Unmanaged.passRetained(arrivals).toOpaque()
    defer { Unmanaged<RawArrivals>.fromOpaque(closure).release() }
    let onMessage: natsMsgHandler = { _, _, message, closure in
        var value: UnsafePointer<CChar>?
        for name in ["content-type", "correlation_id", "message_id"] { _ = natsMsgHeader_Get(message, name, &value) }
        _ = natsMsg_GetData(message)
        _ = natsMsg_GetDataLength(message)
        natsMsg_Destroy(message)
        Unmanaged<RawArrivals>.fromOpaque(closure!).takeUnretainedValue().arrived.signal()
    }
    let subject = "courier.instructions.raw"
    var subscription: OpaquePointer?
    try check(natsConnection_Subscribe(&subscription, connection, subject, onMessage, closure), "subscribe")
    defer { natsSubscription_Destroy(subscription) }
    try check(natsConnection_Flush(connection), "flush")

    let body = Array("\"order placed\"".utf8)
    func send(_ count: Int) throws {
        for _ in 0..<count {
            var message: OpaquePointer?
            try check(natsMsg_Create(&message, subject, nil, body, Int32(body.count)), "message")
            _ = natsMsgHeader_Set(message, "content-type", "text/plain")
            _ = natsMsgHeader_Set(message, "correlation_id", "5f0c6e2a-8a3b-4c1d-9e7f-1a2b3c4d5e6f")
            _ = natsMsgHeader_Set(message, "message_id", "5f0c6e2a-8a3b-4c1d-9e7f-1a2b3c4d5e6f")
            try check(natsConnection_PublishMsg(connection, message), "publish")
            natsMsg_Destroy(message)
            arrivals.arrived.wait()
        }
    }
    try send(200)
    courier_callgrind_start()
    try send(messages)
    courier_callgrind_stop(Scenario.natsCoreRaw.rawValue)
    natsSubscription_Unsubscribe(subscription)
}

/// A scenario that could not run.
struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
