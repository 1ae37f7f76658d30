@_spi(BrokerModule) import Courier
import Synchronization

/// The bounded queue between ended spans and the export task.
///
/// Appending takes the lock once: the span goes in, or, when `capacity` spans are already waiting,
/// is dropped and counted. When a full batch is waiting (or a flush or shutdown is asked for) the
/// export task is woken through ``wakeUps``, Courier's one waiting primitive, holding at most one
/// signal (no polling, no continuation of its own). The export task takes whole batches out under
/// the lock and encodes them outside it.
final class SpanQueue: Sendable {
    private struct State {
        var spans: [FinishedSpan] = []
        var dropped = 0
        /// No more waiting: shutdown began. Spans are still accepted for the final flush.
        var closed = false
        /// A flush was asked for (`flush()`, `forceFlush()`) and has not begun: its waiters.
        var pendingFlush: Latch?
        /// The flush the export task is working through: its waiters.
        var runningFlush: Latch?
        /// Shutdown finished: spans ended from now on are dropped and counted.
        var sealed = false
    }

    let capacity: Int
    let batchSize: Int
    private let state: Mutex<State>
    /// One pending wake-up at most: signals sent while one is pending fold into it.
    private let wakeUps = HandOffQueue<Void>(capacity: 1)

    init(capacity: Int, batchSize: Int) {
        self.capacity = max(1, capacity)
        self.batchSize = max(1, min(batchSize, self.capacity))
        var initial = State()
        initial.spans.reserveCapacity(self.capacity)
        state = Mutex(initial)
    }

    /// Spans dropped because the queue was full (or the tracer had shut down).
    var droppedCount: Int { state.withLock { $0.dropped } }

    /// Spans waiting to be exported.
    var count: Int { state.withLock { $0.spans.count } }

    func append(_ span: FinishedSpan) {
        let batchReady = state.withLock { state -> Bool in
            guard !state.sealed, state.spans.count < capacity else {
                state.dropped += 1
                return false
            }
            state.spans.append(span)
            return state.spans.count == batchSize
        }
        if batchReady { wakeUps.offer(()) }
    }

    /// Up to one batch of the oldest spans, removed from the queue.
    func takeBatch() -> [FinishedSpan] {
        state.withLock { state in
            if state.spans.count <= batchSize {
                var batch: [FinishedSpan] = []
                batch.reserveCapacity(capacity)
                swap(&batch, &state.spans)
                return batch
            }
            let batch = Array(state.spans[..<batchSize])
            state.spans.removeFirst(batchSize)
            return batch
        }
    }

    /// Returns when a full batch is waiting, a flush was asked for, the queue closes, `delay`
    /// passed, or the calling task is cancelled.
    func waitForBatch(atMost delay: Duration) async {
        let ready = state.withLock { state in state.closed || state.pendingFlush != nil || state.spans.count >= batchSize }
        if ready { return }
        _ = await wakeUps.next(timeout: delay)
    }

    /// Wakes the export task to export what is queued, full batch or not; the latch opens once
    /// it did (or the tracer shut down). Requests made before the export task begins the flush
    /// share one latch.
    func requestFlush() -> Latch {
        let latch = state.withLock { state in
            if let pending = state.pendingFlush { return pending }
            let latch = Latch()
            if state.sealed {
                latch.open()
            } else {
                state.pendingFlush = latch
            }
            return latch
        }
        wakeUps.offer(())
        return latch
    }

    /// Begins the flush asked for, if one was: returns how many spans it covers (those queued
    /// now), or nil when no flush was asked for.
    func beginFlush() -> Int? {
        state.withLock { state in
            guard let pending = state.pendingFlush else { return nil }
            state.pendingFlush = nil
            if let running = state.runningFlush {
                // Not finished (shutdown began meanwhile): the new one covers it.
                running.open()
            }
            state.runningFlush = pending
            return state.spans.count
        }
    }

    /// The flush begun last is done: its waiters go on.
    func finishFlush() {
        state.withLock { state in
            defer { state.runningFlush = nil }
            return state.runningFlush
        }?.open()
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Begins shutdown: wakes the export task, which then flushes what is queued.
    func close() {
        state.withLock { $0.closed = true }
        wakeUps.offer(())
    }

    /// Ends shutdown: what is still queued is dropped and counted, as is every later span.
    /// Flushes still waiting end too: nothing will be exported any more.
    func seal() {
        let waiting = state.withLock { state in
            state.closed = true
            state.sealed = true
            state.dropped += state.spans.count
            state.spans = []
            defer { (state.pendingFlush, state.runningFlush) = (nil, nil) }
            return [state.pendingFlush, state.runningFlush]
        }
        for latch in waiting { latch?.open() }
    }
}
