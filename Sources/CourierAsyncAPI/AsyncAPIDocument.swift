public import Courier
import Foundation
import Yams

/// An AsyncAPI document of a service: its brokers' servers, a channel and an operation for each
/// subscriber and publisher, their messages and payload schemas, laid out and named as
/// FastStream's `faststream docs gen` lays out and names them, so that teams reading FastStream
/// services' documents find Courier's familiar, and tools comparing them agree.
///
/// Names: a subscriber's channel is `{address}:{Handler}` (RabbitMQ adds the exchange:
/// `{queue}:_:{Handler}`), where `Handler` is ``AsyncAPIOptions/name`` CamelCased, or
/// `Subscriber`; its operation `{channel}Subscribe`; a publisher's channel and operation
/// `{address}:Publisher`. A ``AsyncAPIOptions/title`` replaces both keys. A model's schema is a
/// component named after the type; a primitive body's is `{Handler}:Message:Payload` (a
/// publisher's `{channel}:Message:Payload`).
///
/// ```swift
/// let document = try AsyncAPIDocument(brokers: [broker], info: .init(title: "Orders", version: "1.2.0"))
/// try document.json().write(to: URL(fileURLWithPath: "asyncapi.json"))
/// ```
public struct AsyncAPIDocument: Sendable {
    /// The document's `info`.
    public struct Info: Sendable, Hashable {
        public var title: String
        public var version: String
        public var description: String?

        public init(title: String = "Courier", version: String = "0.1.0", description: String? = nil) {
            self.title = title
            self.version = version
            self.description = description
        }
    }

    /// The document.
    public let value: JSONValue
    /// Its AsyncAPI version.
    public let version: AsyncAPIVersion

    /// Describes `brokers` as they are declared now (every subscriber registered so far).
    ///
    /// - Throws: ``AsyncAPISchemaError`` for a message type whose schema cannot be derived.
    public init(brokers: [any AsyncAPIDescribable], info: Info = Info(), version: AsyncAPIVersion = .v3_0_0) throws {
        var builder = Builder(version: version)
        for (index, broker) in brokers.enumerated() {
            try builder.add(broker, serverName: index == 0 ? "development" : "development-\(index + 1)")
        }
        self.value = builder.document(info: info)
        self.version = version
    }

    /// The document as JSON, keys sorted, pretty-printed unless `compact`.
    public func json(compact: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = compact ? [.sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// The document as YAML.
    public func yaml() throws -> String {
        try Yams.dump(object: Self.plain(value), sortKeys: true)
    }

    /// `value` as Foundation values, which Yams writes.
    private static func plain(_ value: JSONValue) -> Any {
        switch value {
        case .null: return NSNull()
        case .bool(let value): return value
        case .integer(let value): return value
        case .number(let value): return value
        case .string(let value): return value
        case .array(let values): return values.map(plain)
        case .object(let members): return members.mapValues(plain)
        }
    }
}

extension CourierApp {
    /// The AsyncAPI document of the app's brokers (see ``AsyncAPIDocument``).
    public func asyncAPIDocument(info: AsyncAPIDocument.Info = .init(), version: AsyncAPIVersion = .v3_0_0) throws -> AsyncAPIDocument {
        try AsyncAPIDocument(brokers: brokers.compactMap { $0 as? any AsyncAPIDescribable }, info: info, version: version)
    }
}

// MARK: - Building

extension AsyncAPIDocument {
    /// Gathers the document's parts, broker by broker.
    private struct Builder {
        let version: AsyncAPIVersion
        var servers: [String: JSONValue] = [:]
        var channels: [String: JSONValue] = [:]
        var operations: [String: JSONValue] = [:]
        var messages: [String: JSONValue] = [:]
        var schemas: [String: JSONValue] = [:]

        init(version: AsyncAPIVersion) {
            self.version = version
        }

        var isV3: Bool { version == .v3_0_0 }

        mutating func add(_ broker: any AsyncAPIDescribable, serverName: String) throws {
            servers[serverName] = server(broker.asyncAPIServer(version))
            for subscriber in broker.declaredSubscribers where subscriber.options.asyncAPI.isIncluded {
                var payloads = JSONSchemas(coding: subscriber.options.json ?? broker.asyncAPIJSON)
                try addSubscriber(subscriber, server: serverName, schemas: &payloads)
                for handler in subscriber.handlers {
                    for publisher in handler.publishers where publisher.asyncAPI.isIncluded {
                        try addPublisher(publisher, output: handler.output, batch: subscriber.isBatch, server: serverName, schemas: &payloads)
                    }
                }
                schemas.merge(payloads.components) { first, _ in first }
            }
        }

        private mutating func addSubscriber(_ subscriber: SubscriberDeclaration, server: String, schemas payloads: inout JSONSchemas) throws {
            let options = subscriber.options.asyncAPI
            let channel = subscriber.channels[version] ?? AsyncAPIChannel(address: subscriber.source.subscribedDestination.name)
            let handlerName = options.name.map(Self.camelCased) ?? "Subscriber"
            let key = options.title ?? (([channel.address] + channel.keyQualifiers + [handlerName]).joined(separator: ":"))
            var inputs: [JSONValue] = []
            for handler in subscriber.handlers {
                var schema = try payloads.schema(for: handler.input)
                if subscriber.isBatch { schema = ["type": "array", "items": schema] }
                if !inputs.contains(schema) { inputs.append(schema) }
            }
            let payload = named(Self.oneOf(inputs), "\(options.title ?? handlerName):Message:Payload", in: &payloads)
            add(
                channel: channel,
                key: key,
                operationKey: options.title ?? key + "Subscribe",
                receives: true,
                description: options.description,
                payload: payload,
                server: server
            )
        }

        private mutating func addPublisher(
            _ publisher: PublisherDeclaration,
            output: (any Any.Type)?,
            batch: Bool,
            server: String,
            schemas payloads: inout JSONSchemas
        ) throws {
            let channel = publisher.channels[version] ?? AsyncAPIChannel(address: publisher.destination.name)
            let key = publisher.asyncAPI.title ?? (([channel.address] + channel.keyQualifiers + ["Publisher"]).joined(separator: ":"))
            // A handler without a result type publishes nothing known: anything, as FastStream's `{}`.
            let schema = try output.map { try payloads.schema(for: $0) } ?? [:]
            add(
                channel: channel,
                key: key,
                operationKey: key,
                receives: false,
                description: publisher.asyncAPI.description,
                payload: named(schema, "\(key):Message:Payload", in: &payloads),
                server: server
            )
        }

        /// A model's schema stays the reference it is; another (a string body, an array) becomes a
        /// component of its own named `name`, as FastStream names a primitive body.
        private func named(_ schema: JSONValue, _ name: String, in payloads: inout JSONSchemas) -> JSONValue {
            if schema["$ref"] != nil || schema == [:] { return schema }
            guard var members = schema.object else { return schema }
            members["title"] = .string(name)
            payloads.add(name, .object(members))
            return JSONSchemas.reference(name)
        }

        private mutating func add(
            channel: AsyncAPIChannel,
            key: String,
            operationKey: String,
            receives: Bool,
            description: String?,
            payload: JSONValue,
            server: String
        ) {
            let messageName = isV3 ? (receives ? "SubscribeMessage" : "Message") : "Message"
            let messageKey = "\(key):\(messageName)"
            if var existing = messages[messageKey], let previous = existing["payload"], previous != payload {
                // Two handlers publishing different types to one destination: either may arrive.
                existing = Self.replacing("payload", in: existing, with: Self.oneOf([previous, payload]))
                messages[messageKey] = existing
            } else {
                messages[messageKey] = [
                    "title": .string(messageKey),
                    "correlationId": ["location": "$message.header#/correlation_id"],
                    "headers": Self.headers,
                    "payload": payload,
                ]
            }
            let messageReference: JSONValue = ["$ref": .string("#/components/messages/\(Self.escaped(messageKey))")]
            var members: [String: JSONValue] = [:]
            if let description { members["description"] = .string(description) }
            if !channel.bindings.isEmpty { members["bindings"] = .object(channel.bindings) }
            if isV3 {
                members["address"] = .string(channel.address)
                members["servers"] = [["$ref": .string("#/servers/\(Self.escaped(server))")]]
                members["messages"] = [messageName: messageReference]
                var operation: [String: JSONValue] = [
                    "action": receives ? "receive" : "send",
                    "channel": ["$ref": .string("#/channels/\(Self.escaped(key))")],
                    "messages": [["$ref": .string("#/channels/\(Self.escaped(key))/messages/\(messageName)")]],
                ]
                if !channel.operationBindings.isEmpty { operation["bindings"] = .object(channel.operationBindings) }
                operations[operationKey] = .object(operation)
            } else {
                members["servers"] = [.string(server)]
                var operation: [String: JSONValue] = ["message": messageReference]
                if !channel.operationBindings.isEmpty { operation["bindings"] = .object(channel.operationBindings) }
                // 2.x speaks from the other side: others publish what the application receives.
                members[receives ? "publish" : "subscribe"] = .object(operation)
            }
            channels[key] = .object(members)
        }

        private func server(_ server: AsyncAPIServer) -> JSONValue {
            var members: [String: JSONValue] = ["protocol": .string(server.protocol)]
            if let protocolVersion = server.protocolVersion { members["protocolVersion"] = .string(protocolVersion) }
            if isV3 {
                members["host"] = .string(server.host)
                if let pathname = server.pathname { members["pathname"] = .string(pathname) }
            } else {
                members["url"] = .string(server.url ?? "\(server.protocol)://\(server.host)\(server.pathname ?? "")")
            }
            return .object(members)
        }

        func document(info: Info) -> JSONValue {
            var infoMembers: [String: JSONValue] = ["title": .string(info.title), "version": .string(info.version)]
            if let description = info.description { infoMembers["description"] = .string(description) }
            var document: [String: JSONValue] = [
                "asyncapi": .string(version.rawValue),
                "info": .object(infoMembers),
                "defaultContentType": "application/json",
                "servers": .object(servers),
                "channels": .object(channels),
                "components": ["messages": .object(messages), "schemas": .object(schemas)],
            ]
            if isV3 { document["operations"] = .object(operations) }
            return .object(document)
        }

        /// The headers Courier writes besides the body: the correlation id and the W3C trace
        /// context that makes one trace of a message's journey.
        private static let headers: JSONValue = [
            "type": "object",
            "properties": [
                "correlation_id": ["type": "string", "description": "Ties a reply, and a handler's results, to the message"],
                "traceparent": ["type": "string", "description": "W3C trace context: the trace and the span that sent the message"],
                "tracestate": ["type": "string", "description": "W3C trace context: vendor state"],
                "baggage": ["type": "string", "description": "W3C baggage"],
            ],
        ]

        private static func oneOf(_ schemas: [JSONValue]) -> JSONValue {
            schemas.count == 1 ? schemas[0] : ["oneOf": .array(schemas)]
        }

        private static func replacing(_ key: String, in value: JSONValue, with replacement: JSONValue) -> JSONValue {
            guard var members = value.object else { return value }
            members[key] = replacement
            return .object(members)
        }

        /// A key inside a JSON pointer (RFC 6901).
        static func escaped(_ key: String) -> String {
            key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        }

        /// FastStream's handler names: `first_handler` → `FirstHandler`; a CamelCase name stays.
        static func camelCased(_ name: String) -> String {
            name.split(whereSeparator: { $0 == "_" || $0 == "-" || $0 == " " })
                .map { $0.prefix(1).uppercased() + $0.dropFirst() }
                .joined()
        }
    }
}

extension JSONSchemas {
    /// Adds a named schema (a primitive body's, named as FastStream names it).
    mutating func add(_ name: String, _ schema: JSONValue) {
        if components[name] == nil { setComponent(name, schema) }
    }
}
