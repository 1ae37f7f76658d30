/// Runs `operation`, throwing `timeoutError()` if it has not finished within `timeout` (the
/// operation is then cancelled): the one timeout race of Courier and its broker modules.
///
/// For waits on an event rather than on an operation, a deadline is cheaper and needs no task:
/// ``HandOffQueue/next(upTo:timeout:)``, ``Latch/wait(until:)``, ``PendingResult/value(until:)``.
/// `MessageSubscription.next(timeout:)` races its own read because a delivery taken as the time
/// runs out must be kept, not cancelled away.
package func withTimeout<Result: Sendable>(
    _ timeout: Duration,
    error timeoutError: @escaping @Sendable () -> any Error,
    operation: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw timeoutError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
