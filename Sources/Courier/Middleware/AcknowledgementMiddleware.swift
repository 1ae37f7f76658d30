/// Applies a subscriber's ``AckPolicy``, and is where a failed delivery stops: it is always the
/// outermost step of a subscriber, so the process span has ended when the broker is told. It logs
/// the failure first, unless a line was written for it already (see ``ErrorLoggingMiddleware``).
///
/// The subscriber runner calls it directly rather than through the middleware chain: one async
/// closure level less per message.
struct AcknowledgementMiddleware: CourierMiddleware {
    let policy: AckPolicy

    func consume(_ context: MessageContext, next: ConsumeNext) async throws {
        if policy == .ackFirst {
            await settle(.ack, context)
        }
        do {
            try await next(context)
        } catch {
            ErrorLoggingMiddleware.log(error, of: context)
            await settle(outcomeOnFailure(error), context)
            warnIfUnsettled(context)
            return
        }
        switch policy {
        case .ack, .rejectOnError, .nackOnError:
            await settle(.ack, context)
        case .ackFirst:
            break
        case .manual:
            warnIfUnsettled(context)
        }
    }

    /// A manual handler that returns without settling leaves the delivery with the broker (it
    /// redelivers once the consumer goes away, where the protocol has that): say so, loudly.
    private func warnIfUnsettled(_ context: MessageContext) {
        guard policy == .manual, context.settlement.outcome == nil else { return }
        context.logger.warning("handler with the manual ack policy finished without ack(), nack() or reject(); the delivery stays unsettled")
    }

    private func outcomeOnFailure(_ error: any Error) -> SettlementOutcome? {
        // A handler cancelled at shutdown did not fail: give the message back to the broker.
        if error is CancellationError, policy != .ackFirst {
            return .nack
        }
        switch policy {
        case .ack: return .ack
        case .rejectOnError: return .reject
        case .nackOnError: return .nack
        case .ackFirst, .manual: return nil
        }
    }

    private func settle(_ outcome: SettlementOutcome?, _ context: MessageContext) async {
        guard let outcome else { return }
        do {
            if try await context.settlement.settle(outcome), outcome != .ack {
                context.logger.debug("settled message", metadata: ["courier.settlement": "\(outcome.rawValue)"])
            }
        } catch {
            context.logger.error(
                "could not settle message with the broker",
                metadata: ["courier.settlement": "\(outcome.rawValue)", "error": "\(error)"]
            )
        }
    }
}
