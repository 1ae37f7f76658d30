import Dispatch
import NIOCore
import Synchronization

/// Courier's one waiting primitive: a hand-off queue, where producers hand elements to the
/// consumers that wait for them (a bounded, multi-producer, multi-consumer FIFO for async code). "Wait for the next item", "wait for room" (back-pressure), "refuse when full" (a C
/// callback that cannot wait), "put it back at the front" (a nack), per-consumer stop, and a
/// pressure signal for transports that pause a socket: every queue of the core and the broker
/// modules is one of these, instead of a hand-written continuation queue per file.
///
/// Waiting consumers are served first come, first served; a waiting producer's element goes in
/// as soon as there is room, in order. Cancelling a waiting consumer makes its ``next(upTo:consumer:)``
/// return nil; cancelling a waiting producer makes its ``push(_:)`` throw `CancellationError`.
///
/// Its implementation is inlinable, so that each module using it gets code specialised for its
/// element type: unspecialised, every call looked up the generic metadata of the state, the
/// waiters and the circular buffer at run time, which cost more than a message's whole trip
/// through the in-memory broker.
@_spi(BrokerModule) public final class HandOffQueue<Element: Sendable>: Sendable {
    /// Why ``offer(_:)`` did not take an element.
    public enum OfferResult: Sendable, Equatable {
        case enqueued
        /// At capacity: the caller decides (drop it and count a slow consumer, say).
        case full
        /// Finished: nothing is taken any more.
        case finished
    }

    /// Thrown by ``push(_:)`` once the buffer is finished.
    public struct Finished: Error {
        @usableFromInline init() {}
    }

    // Unsafe continuations: a checked one allocates a canary per wait, and this type resumes
    // each exactly once by construction (a waiter is resumed only by whoever removed it from the
    // state under the lock: an element's arrival, finish, stop, or its cancellation handler).
    @usableFromInline typealias ConsumerContinuation = UnsafeContinuation<[Element]?, Never>
    @usableFromInline typealias ProducerContinuation = UnsafeContinuation<Void, any Error>

    @usableFromInline struct ConsumerWaiter: Sendable {
        @usableFromInline var token: Int
        @usableFromInline var consumer: Int?
        @usableFromInline var maxElements: Int
        @usableFromInline var continuation: ConsumerContinuation

        @inlinable init(token: Int, consumer: Int?, maxElements: Int, continuation: ConsumerContinuation) {
            self.token = token
            self.consumer = consumer
            self.maxElements = maxElements
            self.continuation = continuation
        }
    }

    @usableFromInline struct ProducerWaiter: Sendable {
        @usableFromInline var token: Int
        @usableFromInline var element: Element
        @usableFromInline var continuation: ProducerContinuation

        @inlinable init(token: Int, element: Element, continuation: ProducerContinuation) {
            self.token = token
            self.element = element
            self.continuation = continuation
        }
    }

    @usableFromInline struct State: Sendable {
        // Small to begin with (they grow by doubling): many buffers are one-element reply slots,
        // made and dropped per request, and a waiter queue rarely holds more than a few.
        @usableFromInline var elements = CircularBuffer<Element>(initialCapacity: 2)
        @usableFromInline var consumers = CircularBuffer<ConsumerWaiter>(initialCapacity: 1)
        @usableFromInline var producers = CircularBuffer<ProducerWaiter>(initialCapacity: 1)
        @usableFromInline var stoppedConsumers = Set<Int>()
        @usableFromInline var finished = false
        @usableFromInline var pressured = false

        @inlinable init() {}
    }

    /// What to do outside the lock once the state has changed.
    ///
    /// The common case, one element handed to one waiting consumer, fits in `consumer` without
    /// allocating an array; the arrays take the rest (finish, several producers let in).
    @usableFromInline struct Effects: Sendable {
        @usableFromInline var consumer: (ConsumerContinuation, [Element]?)?
        @usableFromInline var resumeConsumers: [(ConsumerContinuation, [Element]?)] = []
        @usableFromInline var resumeProducers: [(ProducerContinuation, (any Error)?)] = []
        @usableFromInline var pressure: Bool?

        @inlinable init() {}

        @inlinable mutating func resume(_ continuation: ConsumerContinuation, with value: [Element]?) {
            if consumer == nil { consumer = (continuation, value) } else { resumeConsumers.append((continuation, value)) }
        }

        @inlinable func run(_ onPressure: (@Sendable (Bool) -> Void)?) {
            if let consumer { consumer.0.resume(returning: consumer.1) }
            for (continuation, value) in resumeConsumers { continuation.resume(returning: value) }
            for (continuation, error) in resumeProducers {
                if let error { continuation.resume(throwing: error) } else { continuation.resume() }
            }
            if let pressure { onPressure?(pressure) }
        }
    }

    /// Producers wait (``push(_:)``) or are refused (``offer(_:)``) at this many elements.
    public let capacity: Int
    @usableFromInline let resumeBelow: Int
    @usableFromInline let onPressure: (@Sendable (_ full: Bool) -> Void)?
    @usableFromInline let state = Mutex(State())
    /// Identifies waiters for their cancellation handlers; an atomic, so waiting takes no extra lock.
    @usableFromInline let nextToken = Atomic<Int>(0)

    /// - Parameters:
    ///   - capacity: the most elements held; `Int.max` for no bound.
    ///   - resumeBelow: with `onPressure`, the count at or under which a full buffer reports
    ///     itself drained (half the capacity by default).
    ///   - onPressure: called with true when the buffer reaches its capacity, and with false once
    ///     it drained to `resumeBelow`: a transport stops reading its socket in between.
    @inlinable public init(capacity: Int = .max, resumeBelow: Int? = nil, onPressure: (@Sendable (_ full: Bool) -> Void)? = nil) {
        precondition(capacity > 0, "a buffer holds at least one element")
        self.capacity = capacity
        self.resumeBelow = resumeBelow ?? capacity / 2
        self.onPressure = onPressure
    }

    /// How many elements wait now.
    @inlinable public var count: Int { state.withLock { $0.elements.count } }

    /// Whether ``finish()`` was called.
    @inlinable public var isFinished: Bool { state.withLock { $0.finished } }

    // MARK: Producing

    /// Appends `element`, waiting while the buffer is full.
    /// - Throws: ``Finished`` once the buffer is finished; `CancellationError` if the task is
    ///   cancelled while waiting (the element is then not added).
    @inlinable public func push(_ element: Element) async throws {
        var effects = Effects()
        let admitted = try state.withLock { state -> Bool in
            if state.finished { throw Finished() }
            if state.elements.count < capacity || !state.consumers.isEmpty {
                append(element, to: &state, &effects)
                return true
            }
            return false
        }
        effects.run(onPressure)
        if admitted { return }

        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: ProducerContinuation) in
                var effects = Effects()
                let outcome = state.withLock { state -> Result<Bool, any Error> in
                    if state.finished { return .failure(Finished()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.elements.count < capacity || !state.consumers.isEmpty {
                        append(element, to: &state, &effects)
                        return .success(true)
                    }
                    state.producers.append(ProducerWaiter(token: token, element: element, continuation: continuation))
                    return .success(false)
                }
                effects.run(onPressure)
                switch outcome {
                case .success(true): continuation.resume()
                case .success(false): break
                case .failure(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> ProducerWaiter? in
                guard let index = state.producers.firstIndex(where: { $0.token == token }) else { return nil }
                return state.producers.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Appends `element` if there is room, never waiting: for callers that cannot wait (a C
    /// library's callback, a NIO handler).
    @inlinable @discardableResult
    public func offer(_ element: Element) -> OfferResult {
        var effects = Effects()
        let result = state.withLock { state -> OfferResult in
            if state.finished { return .finished }
            guard state.elements.count < capacity || !state.consumers.isEmpty else { return .full }
            append(element, to: &state, &effects)
            return .enqueued
        }
        effects.run(onPressure)
        return result
    }

    /// Appends `element` past the capacity if need be, never waiting or refusing: for a producer
    /// that reacts to the pressure signal instead (a socket whose reading stops when full).
    @inlinable public func append(_ element: Element) {
        var effects = Effects()
        state.withLock { state in
            guard !state.finished else { return }
            append(element, to: &state, &effects)
        }
        effects.run(onPressure)
    }

    /// Puts `element` back at the front, past the capacity if need be (a nacked message was
    /// counted once already).
    @inlinable public func pushFront(_ element: Element) {
        var effects = Effects()
        state.withLock { state in
            guard !state.finished else { return }
            if let waiter = takeConsumer(&state) {
                effects.resume(waiter.continuation, with: [element])
            } else {
                state.elements.prepend(element)
                notePressure(&state, &effects)
            }
        }
        effects.run(onPressure)
    }

    // MARK: Consuming

    /// Up to `maxElements` elements, waiting for the first; nil once the buffer is finished and
    /// drained, once `consumer` was stopped, or when the waiting task is cancelled.
    @inlinable public func next(upTo maxElements: Int = 1, consumer: Int? = nil) async -> [Element]? {
        if let ready = take(upTo: maxElements, consumer: consumer) { return ready }
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: ConsumerContinuation) in
                var effects = Effects()
                let ready = state.withLock { state -> [Element]?? in
                    if let consumer, state.stoppedConsumers.contains(consumer) { return .some(nil) }
                    if !state.elements.isEmpty { return .some(removeFirst(maxElements, from: &state, &effects)) }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.consumers.append(ConsumerWaiter(token: token, consumer: consumer, maxElements: maxElements, continuation: continuation))
                    return .none
                }
                effects.run(onPressure)
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            giveUp(token)
        }
    }

    /// Ends the wait of the consumer `token` with nil, if it still waits (cancelled, timed out).
    @usableFromInline func giveUp(_ token: Int) {
        let waiter = state.withLock { state -> ConsumerWaiter? in
            guard let index = state.consumers.firstIndex(where: { $0.token == token }) else { return nil }
            return state.consumers.remove(at: index)
        }
        waiter?.continuation.resume(returning: nil)
    }

    /// Up to `maxElements` elements, waiting at most `timeout` for the first; nil when none came
    /// in time (or the buffer finished). Elements taken as the time runs out are returned, never
    /// dropped.
    @inlinable public func next(upTo maxElements: Int = 1, timeout: Duration) async -> [Element]? {
        if let ready = take(upTo: maxElements) { return ready }
        guard timeout > .zero else { return nil }
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: ConsumerContinuation) in
                var effects = Effects()
                let ready = state.withLock { state -> [Element]?? in
                    if !state.elements.isEmpty { return .some(removeFirst(maxElements, from: &state, &effects)) }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.consumers.append(ConsumerWaiter(token: token, consumer: nil, maxElements: maxElements, continuation: continuation))
                    return .none
                }
                effects.run(onPressure)
                if let ready {
                    continuation.resume(returning: ready)
                    return
                }
                giveUp(token, after: timeout)
            }
        } onCancel: {
            giveUp(token)
        }
    }

    /// Ends the wait of the consumer `token` after `timeout`, if it still waits then.
    ///
    /// A timer, not a task racing a sleeping task: waiting with a timeout is on the path of every
    /// request and publish confirmation. Whichever comes first, an element or the timer, takes the
    /// waiter out under the lock; the other finds it gone, so nothing taken is ever dropped. The
    /// timer holds the buffer weakly.
    @usableFromInline func giveUp(_ token: Int, after timeout: Duration) {
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(timeout.wholeNanoseconds))) { [weak self] in
            self?.giveUp(token)
        }
    }

    /// A batch: waits for the first element, then up to `maxWait` (from then) for more, until
    /// `maxElements`; without `maxWait`, what is ready with the first. Nil once the buffer is
    /// finished and drained, or when the waiting task is cancelled.
    @inlinable public func nextBatch(upTo maxElements: Int, maxWait: Duration?) async -> [Element]? {
        guard var batch = await next(upTo: maxElements) else { return nil }
        guard let maxWait, batch.count < maxElements else { return batch }
        let deadline = ContinuousClock.now + maxWait
        while batch.count < maxElements {
            let remaining = deadline - .now
            guard remaining > .zero, let more = await next(upTo: maxElements - batch.count, timeout: remaining) else { break }
            batch += more
        }
        return batch
    }

    /// Up to `maxElements` elements that are ready now, without waiting; nil when none is ready
    /// (or the buffer finished, or `consumer` stopped).
    @inlinable public func take(upTo maxElements: Int = 1, consumer: Int? = nil) -> [Element]? {
        var effects = Effects()
        let ready = state.withLock { state -> [Element]? in
            if let consumer, state.stoppedConsumers.contains(consumer) { return nil }
            guard !state.elements.isEmpty else { return nil }
            return removeFirst(maxElements, from: &state, &effects)
        }
        effects.run(onPressure)
        return ready
    }

    /// Stops one consumer: its waiting and later ``next(upTo:consumer:)`` calls return nil; the
    /// elements stay for the others.
    @inlinable public func stop(consumer: Int) {
        let waiters = state.withLock { state -> [ConsumerWaiter] in
            state.stoppedConsumers.insert(consumer)
            let stopped = Array(state.consumers.filter { $0.consumer == consumer })
            state.consumers.removeAll { $0.consumer == consumer }
            return stopped
        }
        for waiter in waiters { waiter.continuation.resume(returning: nil) }
    }

    /// Ends the buffer: producers are refused (waiting ones throw ``Finished``); consumers take
    /// what is left, then get nil. With `discardingElements`, what is left is dropped at once.
    @inlinable public func finish(discardingElements: Bool = false) {
        var effects = Effects()
        state.withLock { state in
            state.finished = true
            if discardingElements { state.elements.removeAll() }
            while let producer = state.producers.popFirst() {
                effects.resumeProducers.append((producer.continuation, Finished()))
            }
            if state.elements.isEmpty {
                while let consumer = state.consumers.popFirst() {
                    effects.resume(consumer.continuation, with: nil)
                }
            }
            if state.pressured {
                state.pressured = false
                effects.pressure = false
            }
        }
        effects.run(onPressure)
    }

    // MARK: State changes (under the lock)

    @inlinable func append(_ element: Element, to state: inout State, _ effects: inout Effects) {
        if let waiter = takeConsumer(&state) {
            effects.resume(waiter.continuation, with: [element])
            return
        }
        state.elements.append(element)
        notePressure(&state, &effects)
    }

    @inlinable func takeConsumer(_ state: inout State) -> ConsumerWaiter? {
        state.consumers.popFirst()
    }

    @inlinable func removeFirst(_ maxElements: Int, from state: inout State, _ effects: inout Effects) -> [Element] {
        let count = min(maxElements, state.elements.count)
        var taken: [Element] = []
        taken.reserveCapacity(count)
        for _ in 0..<count { taken.append(state.elements.removeFirst()) }
        // Room again: waiting producers go in, in order.
        while state.elements.count < capacity, let producer = state.producers.popFirst() {
            state.elements.append(producer.element)
            effects.resumeProducers.append((producer.continuation, nil))
        }
        if state.pressured, state.elements.count <= resumeBelow {
            state.pressured = false
            effects.pressure = false
        }
        return taken
    }

    @inlinable func notePressure(_ state: inout State, _ effects: inout Effects) {
        guard onPressure != nil, !state.pressured, state.elements.count >= capacity else { return }
        state.pressured = true
        effects.pressure = true
    }
}

extension Duration {
    /// The whole nanoseconds, clamped to `Int64`: what NIO's `TimeAmount` and C APIs take.
    package var wholeNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }

    /// The whole milliseconds, clamped to `Int64`.
    package var wholeMilliseconds: Int64 {
        wholeNanoseconds / 1_000_000
    }
}
