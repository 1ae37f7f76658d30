public import Instrumentation
public import Logging
public import ServiceLifecycle
import Courier
import Synchronization
public import Tracing

/// An OpenTelemetry tracer that exports over OTLP/HTTP or OTLP/gRPC, built for high message rates.
///
/// Starting a span takes two ids from a lock-free generator and asks the sampler; ending it takes
/// the span's lock once and the queue's lock once. No task hop per span: the tracer's ``run()``
/// task wakes once per batch (when ``OTLPTracerConfiguration/maxExportBatchSize`` spans are
/// waiting, or after ``OTLPTracerConfiguration/scheduleDelay``), takes the batch out under the
/// lock, encodes it outside, and exports it.
///
/// - Bounded: at most ``OTLPTracerConfiguration/maxQueueSize`` ended spans wait; beyond that they
///   are dropped and counted in ``droppedSpanCount``, never blocking the caller, whether the
///   collector is slow, down, or ``run()`` was never started. One export at a time, each abandoned
///   after ``OTLPTracerConfiguration/exportTimeout`` (``failedExportCount``); no retries.
/// - Shutdown: on graceful shutdown or cancellation, ``run()`` flushes what is queued for at most
///   ``OTLPTracerConfiguration/shutdownTimeout``, then drops (and counts) the rest and returns.
/// - Propagation: W3C `traceparent` and `tracestate` through swift-distributed-tracing's
///   `Injector`/`Extractor` (Courier's `TelemetryMiddleware` adds `baggage` itself).
/// - Sampling: ``OTLPSampler``; a span that is not sampled records nothing and still carries the
///   trace onward with trace flags `00`.
///
/// ```swift
/// let tracer = OTLPTracer(configuration: try OTLPTracerConfiguration(environment: ProcessInfo.processInfo.environment))
/// let broker = MemoryBroker(middlewares: [TelemetryMiddleware(tracer: tracer)])
/// // run `tracer` in the ServiceGroup before the CourierApp: services stop in reverse order, so
/// // Courier drains first and the tracer flushes the last spans
/// ```
public final class OTLPTracer: Tracer, Service, Sendable {
    public typealias Span = OTLPSpan

    /// The configuration the tracer was made with.
    public let configuration: OTLPTracerConfiguration
    private let sampler: OTLPSampler
    private let ids = RandomIDGenerator()
    private let queue: SpanQueue
    private let encoder: OTLPTraceEncoder
    private let exporter: any SpanExporter
    private let logger: Logger
    private let counters = Mutex(Counters())
    private let started = Atomic(false)
    private let shutdown = Mutex(ShutdownState())

    private struct ShutdownState {
        var deadline: ContinuousClock.Instant?
        var watchdog: Task<Void, Never>?
    }

    private struct Counters {
        var exportedSpans = 0
        var failedExports = 0
        var failedSpans = 0
        var rejectedSpans = 0
        var failing = false
    }

    /// Creates a tracer; it exports once ``run()`` runs (in a `ServiceGroup`, or a task of yours).
    ///
    /// An exporter endpoint that is not an `http://` or `https://` URL is logged as an error, and
    /// every export then fails (counted in ``failedExportCount``).
    public init(configuration: OTLPTracerConfiguration = OTLPTracerConfiguration(), logger: Logger = Logger(label: "CourierOTLP")) {
        self.configuration = configuration
        self.sampler = configuration.sampler
        self.logger = logger
        queue = SpanQueue(capacity: configuration.maxQueueSize, batchSize: configuration.maxExportBatchSize)
        encoder = OTLPTraceEncoder(
            resourceAttributes: configuration.resolvedResourceAttributes.map { ($0.0, SpanAttribute.string($0.1)) },
            scopeName: configuration.scopeName,
            scopeVersion: configuration.scopeVersion
        )
        switch configuration.exporter {
        case .none:
            exporter = DiscardingExporter()
        case .httpProtobuf(let url):
            if EndpointURL(url) != nil {
                exporter = HTTPSpanExporter(url: url, headers: configuration.headers, connectTimeout: configuration.exportTimeout)
            } else {
                let reason = "the OTLP/HTTP endpoint \"\(url)\" is not an http:// or https:// URL"
                logger.error("\(reason); no span will be exported")
                exporter = FailingExporter(reason: reason)
            }
        case .grpc(let url):
            let reason = "the OTLP/gRPC endpoint \"\(url)\" is not an http://host:port or https://host:port URL"
            if let endpoint = EndpointURL(url), let grpc = try? GRPCSpanExporter(endpoint: endpoint, headers: configuration.headers) {
                exporter = grpc
            } else {
                logger.error("\(reason); no span will be exported")
                exporter = FailingExporter(reason: reason)
            }
        }
    }

    // MARK: - Counters

    /// Spans dropped because the queue was full (the collector slow or down, or ``run()`` not
    /// running), or still queued when the shutdown flush ran out of time, or ended after shutdown.
    public var droppedSpanCount: Int { queue.droppedCount }
    /// Spans the collector accepted (with `.none`, spans discarded by design).
    public var exportedSpanCount: Int { counters.withLock { $0.exportedSpans } }
    /// Exports that failed: no answer within the timeout, a connection error, an error status.
    public var failedExportCount: Int { counters.withLock { $0.failedExports } }
    /// Spans in the exports that failed.
    public var failedSpanCount: Int { counters.withLock { $0.failedSpans } }
    /// Spans the collector answered it rejected (OTLP partial success).
    public var rejectedSpanCount: Int { counters.withLock { $0.rejectedSpans } }
    /// Ended spans waiting for export.
    public var queuedSpanCount: Int { queue.count }

    // MARK: - Tracer

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> OTLPSpan {
        var context = context()
        let parent = context.otlpSpanContext
        let traceID = parent?.traceID ?? ids.traceID()
        let sampled = sampler.isSampled(traceID: traceID, parent: parent)
        var spanContext = OTLPSpanContext(
            traceID: traceID,
            spanID: ids.spanID(),
            parentSpanID: parent?.spanID ?? 0,
            traceFlags: sampled ? 0x01 : 0x00,
            traceState: parent?.traceState ?? ""
        )
        spanContext.parentIsRemote = parent?.isRemote ?? false
        context.otlpSpanContext = spanContext
        return OTLPSpan(
            name: operationName,
            kind: kind,
            context: context,
            spanContext: spanContext,
            startTime: sampled ? instant().nanosecondsSinceEpoch : 0,
            sink: sampled ? queue : nil
        )
    }

    /// Asks the export task to export what is queued now, without waiting for a full batch.
    public func forceFlush() {
        _ = queue.requestFlush()
    }

    /// Exports every span ended before the call, and returns once that export is over: sent
    /// (``exportedSpanCount``) or failed (``failedExportCount``), each batch within
    /// ``OTLPTracerConfiguration/exportTimeout``. Returns at once when the tracer has shut down,
    /// and when the calling task is cancelled; the export itself is done by ``run()``, so a tracer
    /// that never runs keeps the caller waiting until then.
    ///
    /// For a short-lived program that wants its spans out before it exits, or a test that reads
    /// the counters.
    public func flush() async {
        await queue.requestFlush().wait()
    }

    // MARK: - Instrument

    /// Writes `traceparent` (and `tracestate` when there is one) of the context's span.
    public func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let spanContext = context.otlpSpanContext else { return }
        injector.inject(W3CTraceContext.traceparent(spanContext), forKey: W3CTraceContext.traceparent, into: &carrier)
        if !spanContext.traceState.isEmpty {
            injector.inject(spanContext.traceState, forKey: W3CTraceContext.tracestate, into: &carrier)
        }
    }

    /// Reads `traceparent` and `tracestate`; a missing or malformed `traceparent` leaves the
    /// context as it was.
    public func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: W3CTraceContext.traceparent, from: carrier),
            let spanContext = W3CTraceContext.parse(traceparent: header, tracestate: extractor.extract(key: W3CTraceContext.tracestate, from: carrier))
        else { return }
        context.otlpSpanContext = spanContext
    }

    // MARK: - Service

    /// Exports batches until graceful shutdown or cancellation, then flushes for at most
    /// ``OTLPTracerConfiguration/shutdownTimeout`` (an export in flight included) and returns.
    /// Run it once.
    public func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            throw OTLPConfigurationError(variable: "OTLPTracer.run()", reason: "the tracer is already running or has run")
        }
        let exporter = self.exporter
        // Unstructured, so gRPC's connections outlive a cancelled run() for the final flush.
        let background = Task { await exporter.run() }
        // Unstructured too: cancelling run() starts the bounded shutdown instead of cutting the
        // flush short; the watchdog cancels this task when the shutdown deadline passes.
        let work = Task {
            await self.exportLoop()
            await self.flushAtShutdown()
        }
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await work.value
            } onCancel: {
                self.beginShutdown(work)
            }
        } onGracefulShutdown: {
            self.beginShutdown(work)
        }
        shutdown.withLock { $0.watchdog }?.cancel()
        queue.seal()
        await exporter.shutdown()
        background.cancel()
        logger.debug(
            "OTLP tracer stopped",
            metadata: [
                "exported": "\(exportedSpanCount)", "dropped": "\(droppedSpanCount)",
                "failed_exports": "\(failedExportCount)", "failed_spans": "\(failedSpanCount)",
            ]
        )
    }

    /// Closes the queue (the export loop ends and the flush starts) and arms the watchdog that
    /// cancels whatever is still exporting at the deadline.
    private func beginShutdown(_ work: Task<Void, Never>) {
        let timeout = configuration.shutdownTimeout
        let first = shutdown.withLock { state -> Bool in
            guard state.deadline == nil else { return false }
            state.deadline = .now + timeout
            return true
        }
        guard first else { return }
        queue.close()
        let watchdog = Task {
            do {
                try await Task.sleep(for: timeout)
                work.cancel()
            } catch {
                // run() returned first and cancelled the watchdog.
            }
        }
        shutdown.withLock { $0.watchdog = watchdog }
    }

    private func exportLoop() async {
        let delay = configuration.scheduleDelay
        while !queue.isClosed {
            await queue.waitForBatch(atMost: delay)
            if queue.isClosed { return }
            // A flush covers the spans queued when it begins, in as many batches as it takes;
            // otherwise full batches go out (and the one that woke the loop, full or not).
            var flushing = queue.beginFlush()
            repeat {
                let batch = queue.takeBatch()
                if batch.isEmpty { break }
                flushing? -= batch.count
                await export(batch, timeout: configuration.exportTimeout)
            } while (flushing.map { $0 > 0 } ?? (queue.count >= queue.batchSize)) && !queue.isClosed
            // A flush cut short by shutdown ends with the shutdown flush (seal() opens it).
            if flushing != nil, !queue.isClosed { queue.finishFlush() }
        }
    }

    private func flushAtShutdown() async {
        let deadline = shutdown.withLock { $0.deadline } ?? .now
        while queue.count > 0, !Task.isCancelled {
            let remaining = deadline - .now
            guard remaining > .zero else { return }
            await export(queue.takeBatch(), timeout: min(configuration.exportTimeout, remaining))
        }
    }

    private func export(_ batch: [FinishedSpan], timeout: Duration) async {
        guard !batch.isEmpty else { return }
        let request = encoder.encode(batch)
        let exporter = self.exporter
        do {
            let response = try await ServiceContext.withValue(nil) {
                try await withTimeout(timeout, error: { ExportError(description: "no answer within \(timeout)") }) {
                    try await exporter.export(request, timeout: timeout)
                }
            }
            let (rejected, message) = (try? OTLPTraceEncoder.decodePartialSuccess(response)) ?? (0, "")
            let recovered = counters.withLock { counters in
                counters.exportedSpans += batch.count - Int(clamping: rejected)
                counters.rejectedSpans += Int(clamping: rejected)
                defer { counters.failing = false }
                return counters.failing
            }
            if recovered { logger.info("OTLP export works again") }
            if rejected > 0 {
                logger.warning("the collector rejected spans", metadata: ["rejected": "\(rejected)", "message": "\(message)"])
            }
        } catch {
            let wasFailing = counters.withLock { counters in
                counters.failedExports += 1
                counters.failedSpans += batch.count
                defer { counters.failing = true }
                return counters.failing
            }
            // One warning when exports start failing, then debug until they work again.
            logger.log(
                level: wasFailing ? .debug : .warning,
                "OTLP export failed; its spans are lost",
                metadata: ["spans": "\(batch.count)", "error": "\(error)"]
            )
        }
    }
}
