@testable import Courier
import Testing

/// One attempt's result, many waiters: each wait ends with the result, at its own deadline, or at
/// once on its task's cancellation, while the work goes on for the others.
@Suite("PendingResult: one result, many bounded waits")
struct PendingResultTests {
    struct Refused: Error, Equatable {}

    @Test("waiters before and after the result get the same value")
    func valueForEveryone() async throws {
        let pending = PendingResult<Int>()
        async let early = pending.value()
        async let alsoEarly = pending.value(until: .now + .seconds(60))
        try await Task.sleep(for: .milliseconds(50))
        pending.resolve(.success(42))
        pending.resolve(.success(7))  // the first result wins
        #expect(try await early == 42)
        #expect(try await alsoEarly == 42)
        #expect(try await pending.value() == 42)
        #expect(try await pending.value(until: .now - .seconds(1)) == 42)
    }

    @Test("the work's error is every waiter's error")
    func errorForEveryone() async throws {
        let pending = PendingResult<Int>()
        let waiting = Task { try await pending.value() }
        pending.resolve(.failure(Refused()))
        await #expect(throws: Refused.self) { _ = try await waiting.value }
        await #expect(throws: Refused.self) { _ = try await pending.value(until: .now + .seconds(1)) }
    }

    @Test("a deadline ends one wait with nil; the result still comes to the others")
    func deadline() async throws {
        let pending = PendingResult<String>()
        async let patient = pending.value()
        let start = ContinuousClock.now
        let impatient = try await pending.value(until: .now + .milliseconds(200))
        #expect(impatient == nil)
        #expect(ContinuousClock.now - start >= .milliseconds(190))
        pending.resolve(.success("connected"))
        #expect(try await patient == "connected")
    }

    @Test("cancelling a waiter ends its wait at once with CancellationError, and only its wait")
    func cancellation() async throws {
        let pending = PendingResult<String>()
        let other = Task { try await pending.value() }
        // The result never comes: any bound shows the wait ended; a loaded machine's scheduling sets it.
        try await expectCancellationEndsWait(within: .seconds(10)) {
            _ = try await pending.value()
        }
        pending.resolve(.success("connected"))
        #expect(try await other.value == "connected")
    }
}
