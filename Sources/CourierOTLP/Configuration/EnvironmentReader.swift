/// Applies `OTEL_*` environment variables to an ``OTLPTracerConfiguration``.
struct EnvironmentReader {
    private let environment: [String: String]

    init(_ environment: [String: String]) {
        self.environment = environment
    }

    /// A set, non-blank variable's value, trimmed.
    private func value(_ name: String) -> String? {
        guard let raw = environment[name] else { return nil }
        let trimmed = raw.trimmingSpaces
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The signal-specific variable if set, else the generic one: (name used, value).
    private func tracesOrGeneric(_ suffix: String) -> (String, String)? {
        let specific = "OTEL_EXPORTER_OTLP_TRACES_\(suffix)"
        if let value = value(specific) { return (specific, value) }
        let generic = "OTEL_EXPORTER_OTLP_\(suffix)"
        if let value = value(generic) { return (generic, value) }
        return nil
    }

    func apply(to configuration: inout OTLPTracerConfiguration) throws {
        if let attributes = value("OTEL_RESOURCE_ATTRIBUTES") {
            configuration.resourceAttributes = try Self.keyValueList(attributes, variable: "OTEL_RESOURCE_ATTRIBUTES", secret: false)
        }
        if let name = value("OTEL_SERVICE_NAME") {
            configuration.serviceName = name
        }
        try applySampler(to: &configuration)
        try applyExporter(to: &configuration)
        if let queue = try integer("OTEL_BSP_MAX_QUEUE_SIZE", minimum: 1) { configuration.maxQueueSize = queue }
        if let batch = try integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", minimum: 1) { configuration.maxExportBatchSize = batch }
        if configuration.maxExportBatchSize > configuration.maxQueueSize {
            throw OTLPConfigurationError(
                variable: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                reason: "must not exceed OTEL_BSP_MAX_QUEUE_SIZE (\(configuration.maxQueueSize)), got \(configuration.maxExportBatchSize)"
            )
        }
        if let delay = try integer("OTEL_BSP_SCHEDULE_DELAY", minimum: 0) { configuration.scheduleDelay = .milliseconds(delay) }
        var timeout: Duration?
        if let variable = tracesOrGeneric("TIMEOUT"), let milliseconds = try integer(variable.0, minimum: 0) {
            timeout = .milliseconds(milliseconds)
        }
        if let milliseconds = try integer("OTEL_BSP_EXPORT_TIMEOUT", minimum: 0) {
            timeout = min(timeout ?? .milliseconds(milliseconds), .milliseconds(milliseconds))
        }
        if let timeout { configuration.exportTimeout = timeout }
        var headers: [String: String] = [:]
        for name in ["OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"] {
            if let list = value(name) {
                headers.merge(try Self.keyValueList(list, variable: name, secret: true)) { $1 }
            }
        }
        if !headers.isEmpty { configuration.headers = headers }
    }

    private func applySampler(to configuration: inout OTLPTracerConfiguration) throws {
        guard let name = value("OTEL_TRACES_SAMPLER") else { return }
        func ratio() throws -> Double {
            guard let argument = value("OTEL_TRACES_SAMPLER_ARG") else { return 1.0 }
            guard let ratio = Double(argument), ratio >= 0, ratio <= 1 else {
                throw OTLPConfigurationError(variable: "OTEL_TRACES_SAMPLER_ARG", reason: "expected a ratio between 0 and 1, got \"\(argument)\"")
            }
            return ratio
        }
        switch name.lowercased() {
        case "always_on": configuration.sampler = .alwaysOn
        case "always_off": configuration.sampler = .alwaysOff
        case "traceidratio": configuration.sampler = .traceIDRatio(try ratio())
        case "parentbased_always_on": configuration.sampler = .parentBased(root: .alwaysOn)
        case "parentbased_always_off": configuration.sampler = .parentBased(root: .alwaysOff)
        case "parentbased_traceidratio": configuration.sampler = .parentBased(root: .traceIDRatio(try ratio()))
        default:
            throw OTLPConfigurationError(
                variable: "OTEL_TRACES_SAMPLER",
                reason: "unsupported sampler \"\(name)\"; expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
            )
        }
    }

    private func applyExporter(to configuration: inout OTLPTracerConfiguration) throws {
        if let exporter = value("OTEL_TRACES_EXPORTER") {
            switch exporter.lowercased() {
            case "otlp": break
            case "none":
                configuration.exporter = .none
                return
            default:
                throw OTLPConfigurationError(variable: "OTEL_TRACES_EXPORTER", reason: "unsupported exporter \"\(exporter)\"; expected otlp or none")
            }
        }
        var isGRPC = false
        if let variable = tracesOrGeneric("PROTOCOL") {
            let (name, proto) = variable
            switch proto.lowercased() {
            case "http/protobuf": isGRPC = false
            case "grpc": isGRPC = true
            default:
                throw OTLPConfigurationError(variable: name, reason: "unsupported protocol \"\(proto)\"; expected http/protobuf or grpc")
            }
        }
        let specific = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        let generic = "OTEL_EXPORTER_OTLP_ENDPOINT"
        var endpoint: String
        if let url = value(specific) {
            try Self.validateURL(url, variable: specific)
            endpoint = url
        } else if let url = value(generic) {
            try Self.validateURL(url, variable: generic)
            endpoint = url
            if !isGRPC {
                endpoint = (url.hasSuffix("/") ? String(url.dropLast()) : url) + "/v1/traces"
            }
        } else {
            endpoint = isGRPC ? "http://localhost:4317" : "http://localhost:4318/v1/traces"
        }
        configuration.exporter = isGRPC ? .grpc(endpoint: endpoint) : .httpProtobuf(endpoint: endpoint)
    }

    private func integer(_ name: String, minimum: Int) throws -> Int? {
        guard let text = value(name) else { return nil }
        guard let number = Int(text), number >= minimum else {
            throw OTLPConfigurationError(variable: name, reason: "expected an integer of at least \(minimum), got \"\(text)\"")
        }
        return number
    }

    static func validateURL(_ url: String, variable: String) throws {
        guard let endpoint = EndpointURL(url) else {
            throw OTLPConfigurationError(variable: variable, reason: "expected an http:// or https:// URL with a host, got \"\(url)\"")
        }
        _ = endpoint
    }

    /// `key=value,key2=value2` (W3C baggage-like; keys and values percent-decoded).
    static func keyValueList(_ list: String, variable: String, secret: Bool) throws -> [String: String] {
        var result: [String: String] = [:]
        for (index, member) in list.split(separator: ",", omittingEmptySubsequences: true).enumerated() {
            let trimmed = String(member).trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                let shown = secret ? "" : " (\"\(trimmed)\")"
                throw OTLPConfigurationError(variable: variable, reason: "member \(index + 1)\(shown) is not key=value")
            }
            let key = String(trimmed[..<equals]).trimmingSpaces
            let rawValue = String(trimmed[trimmed.index(after: equals)...]).trimmingSpaces
            guard !key.isEmpty, let decodedKey = key.percentDecoded, let decodedValue = rawValue.percentDecoded else {
                let shown = secret ? "" : " (\"\(trimmed)\")"
                throw OTLPConfigurationError(variable: variable, reason: "member \(index + 1)\(shown) has an empty key or a bad percent-encoding")
            }
            result[decodedKey] = decodedValue
        }
        return result
    }
}

extension String {
    var trimmingSpaces: String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" || first == "\n" || first == "\r" { scalars = scalars.dropFirst() }
        while let last = scalars.last, last == " " || last == "\t" || last == "\n" || last == "\r" { scalars = scalars.dropLast() }
        return String(scalars)
    }

    /// `%XX` sequences decoded as UTF-8; `nil` when one is malformed or the result is not UTF-8.
    var percentDecoded: String? {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var utf8 = Array(self.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard utf8.count >= 2 else { return nil }
            let pair = String(decoding: utf8.prefix(2), as: UTF8.self)
            guard let value = UInt8(pair, radix: 16) else { return nil }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
