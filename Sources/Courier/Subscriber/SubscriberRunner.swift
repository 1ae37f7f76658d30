// The subscriber runner: pulls a subscription's deliveries through the consume chain, at most
// `maxConcurrency` at a time, in order per ordering key.
extension Broker {
    /// Pulls deliveries while fewer than `maxConcurrency` are in flight: a subscriber never holds
    /// more than that, so a slow handler slows the transport down instead of growing a queue.
    func consume(_ subscription: any TransportSubscription, _ definition: SubscriberDefinition<Transport.Source>) async {
        let destination = definition.source.subscribedDestination
        let acknowledgement = AcknowledgementMiddleware(policy: ackPolicy(of: definition))
        // Error logging innermost (inside the process span) and outermost (in the acknowledgement,
        // for a middleware's failure); without middlewares the outer one does. The message log,
        // when asked for, is innermost, so its lines carry the process span's trace id.
        let messageLog: [any CourierMiddleware] = options.messageLogLevel.map { [MessageLogMiddleware(level: $0)] } ?? []
        let chain = (middlewares + (middlewares.isEmpty ? [] : [ErrorLoggingMiddleware()]) + messageLog)
            .consumeChain(ending: definition.handle)
        let json = definition.options.json ?? options.json
        let isBatch = definition.batch != nil
        let broker = transport.description
        var subscriberLogger = logger
        subscriberLogger[metadataKey: "courier.destination"] = "\(destination.name)"
        let metrics = SubscriberMetrics.make(middlewares: middlewares, broker: broker, destination: destination)

        /// The next delivery as a context for the chain; nil once the subscription has ended.
        func receive() async -> MessageContext? {
            let delivery: InboundDelivery?
            do {
                delivery = try await subscription.next()
            } catch {
                subscriberLogger.error("subscription failed; the subscriber stops", metadata: ["error": "\(error)"])
                return nil
            }
            guard var delivery else { return nil }
            metrics?.received(delivery.messages.count)
            if !json.isDefault {
                for index in delivery.messages.indices { delivery.messages[index].json = json }
            }
            return MessageContext(
                delivery: delivery,
                isBatch: isBatch,
                destination: destination,
                broker: broker,
                logger: subscriberLogger,
                json: json,
                dispatch: dispatch
            )
        }
        @Sendable func process(_ context: MessageContext) async {
            defer { metrics?.finished(context.messages.count, outcome: context.settlement.outcome) }
            do {
                try await acknowledgement.consume(context, next: chain)
            } catch {
                context.logger.error("unhandled error after acknowledgement", metadata: ["error": "\(error)"])
            }
        }

        if definition.options.maxConcurrency == 1 {
            // One message at a time needs no child task: each would cost two more scheduling hops.
            while let context = await receive() { await process(context) }
            return
        }
        // A slot per task in flight. Deliveries with the same ordering key queue in their lane
        // and run one after another in the lane's task (which keeps its one slot), in arrival
        // order; a queued delivery holds no slot, so a busy key never keeps the others waiting,
        // but only so many may queue (`waiting`) before intake pauses.
        let slots = AsyncSemaphore(permits: definition.options.maxConcurrency)
        let waiting = AsyncSemaphore(permits: definition.options.maxConcurrency * 4)
        let lanes = OrderingLanes<MessageContext>()
        await withDiscardingTaskGroup { group in
            while true {
                do {
                    try await slots.acquire()
                } catch {
                    break
                }
                guard let context = await receive() else { break }
                guard let key = context.orderingKey else {
                    group.addTask {
                        await process(context)
                        slots.release()
                    }
                    continue
                }
                // Taken before the lane is entered, so the lane task can never give it back first.
                do {
                    try await waiting.acquire()
                } catch {
                    break
                }
                guard lanes.enter(key, context) else {
                    // Queued behind its lane's running delivery: its slot goes to another key.
                    slots.release()
                    continue
                }
                waiting.release()
                group.addTask {
                    var current: MessageContext? = context
                    while let context = current {
                        await process(context)
                        current = lanes.next(in: key)
                        if current != nil { waiting.release() }
                    }
                    slots.release()
                }
            }
        }
    }
}
