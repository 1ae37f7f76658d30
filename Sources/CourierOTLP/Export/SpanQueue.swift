import Courier
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
        /// `forceFlush()`: export what is queued now, full batch or not.
        var flushRequested = false
        /// Shutdown finished: spans ended from now on are dropped and counted.
        var sealed = false
    }

    let capacity: Int
    let batchSize: Int
    private let state: Mutex<State>
    /// One pending wake-up at most: signals sent while one is pending fold into it.
    private let wakeUps = AsyncBuffer<Void>(capacity: 1)

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
            state.flushRequested = false
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
        let ready = state.withLock { state in state.closed || state.flushRequested || state.spans.count >= batchSize }
        if ready { return }
        _ = await wakeUps.next(timeout: delay)
    }

    /// Wakes the export task to export what is queued, full batch or not.
    func requestFlush() {
        state.withLock { $0.flushRequested = true }
        wakeUps.offer(())
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Begins shutdown: wakes the export task, which then flushes what is queued.
    func close() {
        state.withLock { $0.closed = true }
        wakeUps.offer(())
    }

    /// Ends shutdown: what is still queued is dropped and counted, as is every later span.
    func seal() {
        state.withLock { state in
            state.closed = true
            state.sealed = true
            state.dropped += state.spans.count
            state.spans = []
        }
    }
}
