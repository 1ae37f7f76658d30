@_spi(BrokerModule) import Courier

/// The exchanges, queues and bindings a transport declared, in the order it declared them: what
/// it declares again on a new connection after the old one was lost (a server restart forgets
/// transient queues and exchanges; a durable one only needs checking).
struct RabbitTopology: Sendable {
    /// One declaration, as it went to the server.
    enum Declaration: Sendable, Hashable {
        case exchange(RabbitExchange)
        case queue(RabbitQueue)
        case queueBinding(queue: String, exchange: String, routingKey: String, arguments: AMQPFieldTable)
        case exchangeBinding(destination: String, source: String, routingKey: String, arguments: AMQPFieldTable)

        var method: AMQPMethod {
            switch self {
            case .exchange(let exchange):
                .exchangeDeclare(
                    exchange: exchange.name, type: exchange.kind.rawValue, passive: !exchange.declare, durable: exchange.durable,
                    autoDelete: exchange.autoDelete, internal: exchange.internal, noWait: false, arguments: exchange.arguments
                )
            case .queue(let queue):
                .queueDeclare(
                    queue: queue.name, passive: !queue.declare, durable: queue.durable, exclusive: queue.exclusive,
                    autoDelete: queue.autoDelete, noWait: false, arguments: queue.arguments
                )
            case .queueBinding(let queue, let exchange, let routingKey, let arguments):
                .queueBind(queue: queue, exchange: exchange, routingKey: routingKey, noWait: false, arguments: arguments)
            case .exchangeBinding(let destination, let source, let routingKey, let arguments):
                .exchangeBind(destination: destination, source: source, routingKey: routingKey, noWait: false, arguments: arguments)
            }
        }

        /// Whether declaring it again on a new connection makes sense: a passive declaration
        /// only checked that something existed.
        var isRecorded: Bool {
            switch self {
            case .exchange(let exchange): exchange.declare
            case .queue(let queue): queue.declare
            case .queueBinding, .exchangeBinding: true
            }
        }

        var description: String {
            switch self {
            case .exchange(let exchange): "exchange '\(exchange.name)'"
            case .queue(let queue): "queue '\(queue.name)'"
            case .queueBinding(let queue, let exchange, let routingKey, _): "binding of queue '\(queue)' to '\(exchange)' ('\(routingKey)')"
            case .exchangeBinding(let destination, let source, let routingKey, _): "binding of exchange '\(destination)' to '\(source)' ('\(routingKey)')"
            }
        }
    }

    private(set) var declarations: [Declaration] = []

    /// Records a declaration the server accepted (once, in first-declared order).
    mutating func record(_ declaration: Declaration) {
        guard declaration.isRecorded, !declarations.contains(declaration) else { return }
        // A queue or exchange declared again with other settings replaces the old record.
        switch declaration {
        case .exchange(let exchange): declarations.removeAll { if case .exchange(let old) = $0 { old.name == exchange.name } else { false } }
        case .queue(let queue): declarations.removeAll { if case .queue(let old) = $0 { old.name == queue.name } else { false } }
        case .queueBinding, .exchangeBinding: break
        }
        declarations.append(declaration)
    }

    /// Forgets a deleted queue and its bindings.
    mutating func forgetQueue(_ name: String) {
        declarations.removeAll {
            switch $0 {
            case .queue(let queue): queue.name == name
            case .queueBinding(let queue, _, _, _): queue == name
            case .exchange, .exchangeBinding: false
            }
        }
    }

    /// Forgets a deleted exchange and the bindings to and from it.
    mutating func forgetExchange(_ name: String) {
        declarations.removeAll {
            switch $0 {
            case .exchange(let exchange): exchange.name == name
            case .queueBinding(_, let exchange, _, _): exchange == name
            case .exchangeBinding(let destination, let source, _, _): destination == name || source == name
            case .queue: false
            }
        }
    }
}

extension RabbitSource {
    /// The binding key the server gets: the routing key with each `{name}` capture as `*`.
    var bindingKey: String {
        TokenPattern(routingKey ?? queue.name).replacingCaptures(with: "*")
    }

    /// What subscribing declares, in order: the exchange, the queue, the binding.
    var declarations: [RabbitTopology.Declaration] {
        var declarations: [RabbitTopology.Declaration] = []
        if let exchange, exchange.declare { declarations.append(.exchange(exchange)) }
        declarations.append(.queue(queue))
        if let exchange {
            declarations.append(.queueBinding(queue: queue.name, exchange: exchange.name, routingKey: bindingKey, arguments: bindingArguments))
        }
        return declarations
    }
}
