public import Courier

extension Broker {
    /// Runs the broker while `body` runs (from the moment every subscriber is subscribed), then
    /// stops its intake and waits until every in-flight message has finished: what a test
    /// asserts on afterwards (spans, settlements) is complete.
    public func withRunning<Result>(_ body: () async throws -> Result) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            await waitUntilSubscribed()
            do {
                let result = try await body()
                await stopIntake()
                try await group.waitForAll()
                return result
            } catch {
                await stopIntake()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}
