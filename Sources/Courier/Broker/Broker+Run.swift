// The run: connect, subscribe every subscriber (and those registered while running), run the
// transport's loop and a subscriber runner per subscription, stop intake, finish.
extension Broker {
    /// Connects, starts every subscriber and the transport's run loop, and returns once
    /// ``stopIntake()`` was called and every in-flight message has finished; cancelling the task
    /// cancels the handlers. Subscribers registered while it runs are subscribed at once.
    ///
    /// If connecting or a subscription fails, what was started is stopped, the transport is
    /// closed and the error is thrown.
    public func run() async throws {
        let (lateSubscribers, lateContinuation) = AsyncStream.makeStream(of: SubscriberDefinition<Transport.Source>.self)
        let definitions = state.withLock { state -> [SubscriberDefinition<Transport.Source>]? in
            guard case .idle = state.phase else { return nil }
            state.phase = .starting
            state.lateSubscribers = lateContinuation
            return state.subscribers
        }
        guard let definitions else { return }
        defer { subscribed.open() }

        do {
            try await transport.connect()
        } catch {
            finish()
            throw error
        }
        try await withThrowingTaskGroup(of: Void.self) { loops in
            // The transport's own loop (a poll loop, heartbeats, reconnects) runs for as long as
            // the broker does, and ends after the transport closed.
            loops.addTask { [transport, logger] in
                do {
                    try await transport.run()
                } catch is CancellationError {
                } catch {
                    logger.error("the transport's run loop failed; the broker stops", metadata: ["error": "\(error)"])
                    await self.stopIntake()
                }
            }
            var running: [(SubscriberDefinition<Transport.Source>, any TransportSubscription)] = []
            do {
                for definition in definitions {
                    running.append((definition, try await transport.subscribe(to: definition.source, options: subscriptionOptions(definition))))
                }
            } catch {
                for (_, subscription) in running { await subscription.stop() }
                await transport.close()
                loops.cancelAll()
                finish()
                throw error
            }
            let stopAtOnce = state.withLock { state -> Bool in
                state.subscriptions = running.map(\.1)
                if case .stopping = state.phase { return true }
                state.phase = .running
                return false
            }
            if stopAtOnce {
                for (_, subscription) in running { await subscription.stop() }
            }
            subscribed.open()
            logger.debug("broker started", metadata: ["courier.subscribers": "\(running.count)"])

            await withTaskGroup(of: Void.self) { group in
                for (definition, subscription) in running {
                    group.addTask { await self.consume(subscription, definition) }
                }
                // Waits for late subscribers until the broker stops (a broker without any
                // subscriber, a publish-only service, waits here).
                for await definition in lateSubscribers {
                    guard let subscription = await subscribeLate(definition) else { continue }
                    group.addTask { await self.consume(subscription, definition) }
                }
            }
            await transport.close()
            loops.cancelAll()
        }
        finish()
    }

    /// Takes a subscription made while the broker runs into the ones ``stopIntake()`` stops;
    /// false when the broker is no longer running.
    func adopt(_ subscription: any TransportSubscription) -> Bool {
        state.withLock { state in
            guard case .running = state.phase else { return false }
            state.subscriptions.append(subscription)
            return true
        }
    }

    /// Subscribes a subscriber registered while the broker runs; nil if it failed or the broker
    /// is stopping.
    private func subscribeLate(_ definition: SubscriberDefinition<Transport.Source>) async -> (any TransportSubscription)? {
        let subscription: any TransportSubscription
        do {
            subscription = try await transport.subscribe(to: definition.source, options: subscriptionOptions(definition))
        } catch {
            logger.error(
                "a subscriber registered while the broker runs could not subscribe",
                metadata: ["courier.destination": "\(definition.source.subscribedDestination.name)", "error": "\(error)"]
            )
            return nil
        }
        let adopted = adopt(subscription)
        if !adopted { await subscription.stop() }
        return adopted ? subscription : nil
    }

    private func subscriptionOptions(_ definition: SubscriberDefinition<Transport.Source>) -> SubscriptionOptions {
        SubscriptionOptions(
            batch: definition.batch,
            maxConcurrency: definition.options.maxConcurrency,
            ackPolicy: ackPolicy(of: definition)
        )
    }

    func ackPolicy(of definition: SubscriberDefinition<Transport.Source>) -> AckPolicy {
        definition.options.ackPolicy ?? options.defaultAckPolicy ?? transport.defaultAckPolicy
    }

    private func finish() {
        let late = state.withLock { state in
            state.phase = .stopped
            state.subscriptions = []
            return state.lateSubscribers.take()
        }
        late?.finish()
        subscribed.open()
    }

    /// Stops taking new deliveries; ``run()`` returns once in-flight messages have finished.
    public func stopIntake() async {
        let (subscriptions, late) = state.withLock { state -> ([any TransportSubscription], AsyncStream<SubscriberDefinition<Transport.Source>>.Continuation?) in
            switch state.phase {
            case .idle, .starting, .running:
                state.phase = .stopping
                return (state.subscriptions, state.lateSubscribers)
            case .stopping, .stopped:
                return ([], nil)
            }
        }
        late?.finish()
        for subscription in subscriptions { await subscription.stop() }
    }
}
