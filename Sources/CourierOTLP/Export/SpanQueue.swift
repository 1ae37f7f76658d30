import Synchronization

/// The bounded queue between ended spans and the export task.
///
/// Appending takes the lock once: the span goes in, or, when `capacity` spans are already waiting,
/// is dropped and counted. When a full batch is waiting the export task is woken through a stored
/// continuation (no polling). The export task takes whole batches out under the lock and encodes
/// them outside it.
final class SpanQueue: Sendable {
    private struct State {
        var spans: [FinishedSpan] = []
        var dropped = 0
        var waiter: CheckedContinuation<Void, Never>?
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
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            guard !state.sealed, state.spans.count < capacity else {
                state.dropped += 1
                return nil
            }
            state.spans.append(span)
            guard state.spans.count >= batchSize else { return nil }
            return state.waiter.take()
        }
        waiter?.resume()
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

    /// Returns when a full batch is waiting, the queue closes, or the calling task is cancelled.
    func waitForBatch() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed || state.flushRequested || state.spans.count >= batchSize || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiter.take() }?.resume()
        }
    }

    /// Wakes the export task to export what is queued, full batch or not.
    func requestFlush() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.flushRequested = true
            return state.waiter.take()
        }?.resume()
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Begins shutdown: wakes the export task, which then flushes what is queued.
    func close() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            return state.waiter.take()
        }?.resume()
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
