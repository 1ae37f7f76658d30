@_spi(BrokerModule) import Courier
import Synchronization

/// Every poll loop of one transport (its producer, each subscription's consumer, the reply
/// consumer), driven as child tasks of one task group: ``KafkaTransport/run()``'s, as
/// swift-kafka-client's `run()` drives its clients, so the broker's run starts and joins them.
///
/// A program that publishes without ever running the broker still needs its delivery reports:
/// the first loop that is needed while nothing drives them (a publish, a request) starts the
/// same group in a task the transport keeps, and a later ``run()`` joins that task instead.
/// Either way ``close()`` ends the group once every loop was stopped, and waits for it.
final class KafkaPollLoops: Sendable {
    private enum Phase {
        /// Nothing drives the loops yet; these wait.
        case waiting([KafkaPollLoop])
        /// A group drives every loop, and each one added; `ended` opens when the group is done.
        case driving(AsyncStream<KafkaPollLoop>.Continuation, ended: Latch)
        /// ``close()`` ended the group: a loop added now is never polled.
        case closed
    }

    private let phase = Mutex(Phase.waiting([]))

    /// Drives every loop until ``close()`` and each loop stopped; if they are driven already (a
    /// publish came first), waits for that instead.
    func run() async {
        switch start() {
        case .some(let (loops, ended)):
            await drive(loops)
            ended.open()
        case .none:
            await joined()
        }
    }

    /// Adds a loop; it is driven at once if the loops are, otherwise when they are.
    func add(_ loop: KafkaPollLoop) {
        phase.withLock { phase in
            switch phase {
            case .waiting(var loops):
                loops.append(loop)
                phase = .waiting(loops)
            case .driving(let continuation, _):
                continuation.yield(loop)
            case .closed:
                break
            }
        }
    }

    /// Makes sure the loops are driven: a client that needs its loop now (a publish waiting for
    /// its report) calls this; without a ``run()`` it starts the group in a task of its own.
    func ensureDriven() {
        guard let (loops, ended) = start() else { return }
        Task {
            await drive(loops)
            ended.open()
        }
    }

    /// Ends the group once the loops it drives have stopped (their clients closed first), and
    /// waits for it.
    func close() async {
        let ended = phase.withLock { phase -> Latch? in
            defer { phase = .closed }
            guard case .driving(let continuation, let ended) = phase else { return nil }
            continuation.finish()
            return ended
        }
        await ended?.wait()
    }

    /// Moves to driving: the stream of loops (those waiting first) and the latch to open when
    /// the group is done; nil when the loops are driven already or closed.
    private func start() -> (AsyncStream<KafkaPollLoop>, Latch)? {
        phase.withLock { phase in
            guard case .waiting(let waiting) = phase else { return nil }
            let (loops, continuation) = AsyncStream.makeStream(of: KafkaPollLoop.self)
            for loop in waiting { continuation.yield(loop) }
            let ended = Latch()
            phase = .driving(continuation, ended: ended)
            return (loops, ended)
        }
    }

    private func joined() async {
        let ended = phase.withLock { phase -> Latch? in
            guard case .driving(_, let ended) = phase else { return nil }
            return ended
        }
        await ended?.wait()
    }

    private func drive(_ loops: AsyncStream<KafkaPollLoop>) async {
        await withDiscardingTaskGroup { group in
            for await loop in loops {
                group.addTask { await loop.run() }
            }
        }
    }
}
