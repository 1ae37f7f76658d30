#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import Courier

/// An HTML page of our own making that shows an AsyncAPI document without the internet: the
/// channels, operations, messages and schemas are rendered on the server, so the page reads the
/// same offline, in a CI artefact or in a headless browser. JavaScript only filters the sections.
public enum AsyncAPIPage {
    /// The page for `document` (an AsyncAPI 3.0.0 or 2.6.0 document as a JSONValue).
    ///
    /// - Parameters:
    ///   - document: The AsyncAPI document.
    ///   - useWebComponent: When true, additionally include the official AsyncAPI web component from a CDN,
    ///     rendering the embedded document into `<div id="asyncapi-cdn">`; our own rendering stays on the
    ///     page above it, so the page is never blank offline.
    /// - Returns: A complete HTML5 document.
    public static func html(for document: JSONValue, useWebComponent: Bool = false) -> String {
        var page = PageRenderer(document: document)
        page.render(useWebComponent: useWebComponent)
        return page.html.text
    }
}

/// Builds the markup: `raw` for what we wrote, `append` for any text that came from the document.
private struct HTML {
    private(set) var text = ""

    mutating func raw(_ markup: String) { text += markup }

    mutating func append(_ content: String) { text += HTML.escape(content) }

    mutating func element(_ tag: String, class className: String? = nil, _ content: String) {
        raw("<\(tag)" + (className.map { " class=\"\($0)\"" } ?? "") + ">")
        append(content)
        raw("</\(tag)>")
    }

    mutating func definition(_ term: String, markup: String) { raw("<dt>\(term)</dt><dd>\(markup)</dd>") }

    /// Nothing for a missing value: an empty row says less than no row.
    mutating func definition(_ term: String, code value: String?) {
        guard let value else { return }
        definition(term, markup: "<code>" + HTML.escape(value) + "</code>")
    }

    /// Escapes quotes too, so the same text is safe in an attribute (`id`, `data-key`, `href`).
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

/// An operation as the page shows it, whether the document declared it (3.0) or a channel's
/// `publish`/`subscribe` implied it (2.x).
private struct DocumentedOperation {
    var key: String
    var action: String
    var channel: String?
    var messages: [String]
    var source: JSONValue
}

/// An object's members in key order: the page must come out the same for the same document.
private func sortedMembers(_ value: JSONValue?) -> [(key: String, value: JSONValue)] {
    (value?.object ?? [:]).sorted { $0.key < $1.key }
}

private struct PageRenderer {
    let document: JSONValue
    var html = HTML()

    mutating func render(useWebComponent: Bool) {
        let operations = collectOperations()
        let title = [document["info"]?["title"]?.string, document["info"]?["version"]?.string]
            .compactMap { $0 }.joined(separator: " ")
        html.raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        html.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>")
        html.append(title.isEmpty ? "AsyncAPI document" : title)
        html.raw("</title><style>\(Self.stylesheet)</style>")
        if useWebComponent { html.raw("<link rel=\"stylesheet\" href=\"\(Self.webComponentStyles)\">") }
        html.raw("</head><body>")
        renderTableOfContents(operations)
        html.raw("<main>")
        renderInfo()
        renderServers()
        renderChannels()
        renderOperations(operations)
        renderMessages()
        renderSchemas()
        if useWebComponent { renderWebComponent() }
        html.raw("</main><script>\(Self.searchScript)</script></body></html>")
    }

    // MARK: Sections

    mutating func renderTableOfContents(_ operations: [DocumentedOperation]) {
        html.raw("<nav id=\"toc\"><input id=\"search\" type=\"search\" placeholder=\"Filter\" autocomplete=\"off\"")
        html.raw(" aria-label=\"Filter channels, operations, messages and schemas\"><ul>")
        html.raw("<li><a href=\"#info\">Overview</a></li><li><a href=\"#servers\">Servers</a></li>")
        renderContentsGroup("Channels", kind: "channel", keys: sortedMembers(document["channels"]).map { $0.key })
        renderContentsGroup("Operations", kind: "operation", keys: operations.map { $0.key })
        renderContentsGroup("Messages", kind: "message", keys: sortedMembers(document["components"]?["messages"]).map { $0.key })
        renderContentsGroup("Schemas", kind: "schema", keys: sortedMembers(document["components"]?["schemas"]).map { $0.key })
        html.raw("</ul></nav>")
    }

    mutating func renderContentsGroup(_ title: String, kind: String, keys: [String]) {
        html.raw("<li><a href=\"#\(kind)s\">\(title)</a><ul>")
        for key in keys {
            let escaped = HTML.escape(key)
            html.raw("<li><a href=\"#\(kind)-\(escaped)\">\(escaped)</a></li>")
        }
        html.raw("</ul></li>")
    }

    mutating func renderInfo() {
        html.raw("<header id=\"info\"><h1>")
        html.append(document["info"]?["title"]?.string ?? "AsyncAPI document")
        if let version = document["info"]?["version"]?.string { html.raw(" "); html.element("span", class: "version", version) }
        html.raw("</h1>")
        if let description = document["info"]?["description"]?.string { html.element("p", class: "description", description) }
        html.raw("<dl class=\"meta\">")
        html.definition("AsyncAPI", code: document["asyncapi"]?.string)
        html.definition("Default content type", code: document["defaultContentType"]?.string)
        html.raw("</dl></header>")
    }

    mutating func renderServers() {
        html.raw("<section id=\"servers\"><h2>Servers</h2>")
        let servers = sortedMembers(document["servers"])
        if servers.isEmpty { html.raw("<p class=\"empty\">None.</p>") } else {
            html.raw("<table class=\"servers\"><thead><tr><th>Name</th><th>Host</th><th>Pathname</th><th>Protocol</th>")
            html.raw("<th>Protocol version</th><th>Description</th></tr></thead><tbody>")
            for (name, server) in servers {
                // 3.0 splits the location into host and pathname; 2.x has a single url.
                let cells: [String?] = [
                    name, server["host"]?.string ?? server["url"]?.string, server["pathname"]?.string,
                    server["protocol"]?.string, server["protocolVersion"]?.string, server["description"]?.string,
                ]
                html.raw("<tr id=\"server-\(HTML.escape(name))\">")
                for cell in cells { html.element("td", cell ?? "") }
                html.raw("</tr>")
            }
            html.raw("</tbody></table>")
        }
        html.raw("</section>")
    }

    mutating func renderChannels() {
        html.raw("<section id=\"channels\"><h2>Channels</h2>")
        for (key, channel) in sortedMembers(document["channels"]) {
            let messages = channelMessages(key, channel).map { messageLink($0) }
            openItem(kind: "channel", key: key)
            html.raw("<dl class=\"meta\">")
            // 2.x has no address: the channel's name for the broker lives in its bindings.
            html.definition("Address", code: channel["address"]?.string ?? Self.bindingAddress(channel["bindings"]))
            if !messages.isEmpty { html.definition("Messages", markup: messages.joined(separator: ", ")) }
            html.raw("</dl>")
            renderProse(channel)
            renderBindings(channel["bindings"])
            html.raw("</section>")
        }
        html.raw("</section>")
    }

    mutating func renderOperations(_ operations: [DocumentedOperation]) {
        html.raw("<section id=\"operations\"><h2>Operations</h2>")
        for operation in operations {
            let action = HTML.escape(operation.action)
            let messages = operation.messages.map { messageLink($0) }
            openItem(kind: "operation", key: operation.key, heading: " <span class=\"action action-\(action)\">\(action)</span>")
            html.raw("<dl class=\"meta\">")
            if let channel = operation.channel {
                let escaped = HTML.escape(channel)
                html.definition("Channel", markup: "<a href=\"#channel-\(escaped)\"><code>\(escaped)</code></a>")
            }
            if !messages.isEmpty { html.definition("Messages", markup: messages.joined(separator: ", ")) }
            html.raw("</dl>")
            renderProse(operation.source)
            renderBindings(operation.source["bindings"])
            html.raw("</section>")
        }
        html.raw("</section>")
    }

    mutating func renderMessages() {
        html.raw("<section id=\"messages\"><h2>Messages</h2>")
        for (key, declared) in sortedMembers(document["components"]?["messages"]) {
            let message = resolve(declared)
            let title = message["title"]?.string.map { " <span class=\"title\">" + HTML.escape($0) + "</span>" } ?? ""
            openItem(kind: "message", key: key, heading: title)
            let correlationLocation = message["correlationId"].map { resolve($0) }?["location"]?.string
            html.raw("<dl class=\"meta\">")
            html.definition("Name", code: message["name"]?.string)
            html.definition("Content type", code: message["contentType"]?.string)
            html.definition("Correlation ID", code: correlationLocation)
            html.raw("</dl>")
            renderProse(message, includingTitle: false)
            if let headers = message["headers"] { html.raw("<h4>Headers</h4>"); renderSchema(Self.schema(of: headers)) }
            if let payload = message["payload"] { html.raw("<h4>Payload</h4>"); renderSchema(Self.schema(of: payload)) }
            renderBindings(message["bindings"])
            html.raw("</section>")
        }
        html.raw("</section>")
    }

    mutating func renderSchemas() {
        html.raw("<section id=\"schemas\"><h2>Schemas</h2>")
        for (key, schema) in sortedMembers(document["components"]?["schemas"]) {
            openItem(kind: "schema", key: key)
            renderSchema(schema)
            html.raw("</section>")
        }
        html.raw("</section>")
    }

    /// The CDN component draws below ours; when the CDN is unreachable the page simply lacks it.
    mutating func renderWebComponent() {
        html.raw("<div id=\"asyncapi-cdn\"></div><script src=\"\(Self.webComponentScript)\"></script><script>")
        html.raw("if (window.AsyncApiStandalone) { AsyncApiStandalone.render({ schema: \(Self.scriptJSON(document)), ")
        html.raw("config: { show: { sidebar: false } } }, document.getElementById('asyncapi-cdn')); }</script>")
    }

    // MARK: Parts

    /// Opens `<section>` for one item; ids and data attributes are what links and tests rely on.
    mutating func openItem(kind: String, key: String, heading: String = "") {
        let escaped = HTML.escape(key)
        html.raw("<section class=\"\(kind)\" id=\"\(kind)-\(escaped)\" data-kind=\"\(kind)\" data-key=\"\(escaped)\">")
        html.raw("<h3><code>\(escaped)</code>\(heading)</h3>")
    }

    mutating func renderProse(_ value: JSONValue, includingTitle: Bool = true) {
        if includingTitle, let title = value["title"]?.string { html.element("p", class: "title", title) }
        if let summary = value["summary"]?.string { html.element("p", class: "summary", summary) }
        if let description = value["description"]?.string { html.element("p", class: "description", description) }
    }

    mutating func renderBindings(_ bindings: JSONValue?) {
        guard let bindings, bindings.object?.isEmpty == false else { return }
        html.raw("<h4>Bindings</h4>")
        renderValue(bindings)
    }

    /// Bindings as nested definition lists, so `amqp` › `queue` › `durable` reads as a path.
    mutating func renderValue(_ value: JSONValue) {
        switch value {
        case .object(let members) where !members.isEmpty:
            html.raw("<dl class=\"bindings\">")
            for (key, member) in sortedMembers(value) {
                html.raw("<dt><code class=\"binding\">")
                html.append(key)
                html.raw("</code></dt><dd>")
                renderValue(member)
                html.raw("</dd>")
            }
            html.raw("</dl>")
        case .array(let elements) where !elements.isEmpty:
            html.raw("<ul class=\"values\">")
            for element in elements { html.raw("<li>"); renderValue(element); html.raw("</li>") }
            html.raw("</ul>")
        default:
            html.element("code", Self.literal(value))
        }
    }

    mutating func renderSchema(_ schema: JSONValue) {
        html.raw("<div class=\"schema\"><p>Type: <span class=\"type\">\(Self.typeMarkup(schema))</span></p>")
        renderDetails(schema)
        html.raw("</div>")
    }

    mutating func renderDetails(_ schema: JSONValue) {
        renderProse(schema)
        if let values = schema["enum"]?.array {
            let listed = values.map { "<code>" + HTML.escape(Self.literal($0)) + "</code>" }
            html.raw("<p class=\"enum\">One of: " + listed.joined(separator: ", ") + "</p>")
        }
        if let constant = schema["const"] { renderLiteral(constant, label: "Always", class: "const") }
        if let fallback = schema["default"] { renderLiteral(fallback, label: "Default", class: "default") }
        for object in Self.nestedObjects(in: schema) { renderProperties(of: object) }
    }

    mutating func renderLiteral(_ value: JSONValue, label: String, class className: String) {
        html.raw("<p class=\"\(className)\">\(label): ")
        html.element("code", Self.literal(value))
        html.raw("</p>")
    }

    mutating func renderProperties(of schema: JSONValue) {
        let required = Set((schema["required"]?.array ?? []).compactMap(\.string))
        html.raw("<table class=\"properties\"><thead><tr>")
        html.raw("<th>Name</th><th>Type</th><th>Required</th><th>Description</th></tr></thead><tbody>")
        for (name, property) in sortedMembers(schema["properties"]) {
            html.raw("<tr><td><code class=\"field\">")
            html.append(name)
            html.raw("</code></td><td class=\"type\">\(Self.typeMarkup(property))</td>")
            html.raw("<td class=\"required\">\(required.contains(name) ? "yes" : "no")</td><td>")
            renderDetails(property)
            html.raw("</td></tr>")
        }
        html.raw("</tbody></table>")
    }

    // MARK: Reading the document

    func collectOperations() -> [DocumentedOperation] {
        var operations: [DocumentedOperation] = []
        if document["operations"]?.object != nil {
            for (key, operation) in sortedMembers(document["operations"]) {
                let channel = operation["channel"]?["$ref"]?.string.flatMap { Self.channelName(fromReference: $0) }
                var messages = (operation["messages"]?.array ?? []).flatMap { messageNames($0) }
                // An operation without `messages` carries every message of its channel.
                if operation["messages"] == nil, let channel {
                    messages = sortedMembers(document["channels"]?[channel]?["messages"]).map {
                        channelMessageName(channel: channel, message: $0.key)
                    }
                }
                let action = operation["action"]?.string ?? ""
                operations.append(
                    DocumentedOperation(key: key, action: action, channel: channel, messages: messages, source: operation)
                )
            }
            return operations
        }
        // 2.x speaks from the client's side: `publish` is what the application receives.
        for (channelKey, channel) in sortedMembers(document["channels"]) {
            for (verb, action) in [("publish", "receive"), ("subscribe", "send")] {
                guard let operation = channel[verb] else { continue }
                let key = operation["operationId"]?.string ?? "\(channelKey).\(verb)"
                let messages = operation["message"].map { messageNames($0) } ?? []
                operations.append(
                    DocumentedOperation(key: key, action: action, channel: channelKey, messages: messages, source: operation)
                )
            }
        }
        return operations.sorted { $0.key < $1.key }
    }

    func channelMessages(_ key: String, _ channel: JSONValue) -> [String] {
        let declared = sortedMembers(channel["messages"]).map { channelMessageName(channel: key, message: $0.key) }
        let implied = ["publish", "subscribe"].compactMap { channel[$0]?["message"] }.flatMap { messageNames($0) }
        var seen = Set<String>()
        return (declared + implied).filter { seen.insert($0).inserted }
    }

    /// The `components.messages` names a message reference leads to (several for a 2.x `oneOf`).
    func messageNames(_ message: JSONValue) -> [String] {
        if let variants = message["oneOf"]?.array { return variants.flatMap { messageNames($0) } }
        guard let reference = message["$ref"]?.string else {
            return [message["name"]?.string ?? message["title"]?.string ?? "(inline message)"]
        }
        let tokens = Self.pointerTokens(reference)
        if tokens.count == 3, tokens[0] == "components", tokens[1] == "messages" { return [tokens[2]] }
        if tokens.count == 4, tokens[0] == "channels", tokens[2] == "messages" {
            return [channelMessageName(channel: tokens[1], message: tokens[3])]
        }
        return [reference]
    }

    /// A channel's message is usually itself a reference into `components.messages`: show that name.
    func channelMessageName(channel: String, message: String) -> String {
        guard let reference = document["channels"]?[channel]?["messages"]?[message]?["$ref"]?.string else { return message }
        let tokens = Self.pointerTokens(reference)
        return tokens.count == 3 && tokens[0] == "components" && tokens[1] == "messages" ? tokens[2] : message
    }

    func messageLink(_ name: String) -> String {
        let escaped = HTML.escape(name)
        guard document["components"]?["messages"]?[name] != nil else { return "<code>\(escaped)</code>" }
        return "<a href=\"#message-\(escaped)\"><code>\(escaped)</code></a>"
    }

    /// Follows one local `$ref`; anything else comes back as it was.
    func resolve(_ value: JSONValue) -> JSONValue {
        guard let reference = value["$ref"]?.string, reference.hasPrefix("#/") else { return value }
        var target: JSONValue? = document
        for token in Self.pointerTokens(reference) { target = target?[token] }
        return target ?? value
    }

    static func bindingAddress(_ bindings: JSONValue?) -> String? {
        guard let bindings else { return nil }
        let candidates: [JSONValue?] = [
            bindings["kafka"]?["topic"], bindings["redis"]?["channel"], bindings["nats"]?["subject"],
            bindings["amqp"]?["queue"]?["name"], bindings["amqp"]?["exchange"]?["name"],
        ]
        return candidates.lazy.compactMap { $0?.string }.first
    }

    static func channelName(fromReference reference: String) -> String? {
        let tokens = pointerTokens(reference)
        return tokens.count == 2 && tokens[0] == "channels" ? tokens[1] : nil
    }

    /// The tokens of a local JSON pointer (`#/channels/user~1signedup`); empty for any other reference.
    static func pointerTokens(_ reference: String) -> [String] {
        guard reference.hasPrefix("#/") else { return [] }
        return reference.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false).map { (token: Substring) -> String in
            // A URI fragment is percent-encoded first; `~1` before `~0` is RFC 6901's order.
            percentDecoded(token).replacing("~1", with: "/").replacing("~0", with: "~")
        }
    }

    /// `removingPercentEncoding` is Foundation's, not FoundationEssentials'; an invalid escape stays as written.
    static func percentDecoded(_ token: Substring) -> String {
        let source = Array(token.utf8)
        var bytes: [UInt8] = []
        var index = 0
        while index < source.count {
            if source[index] == UInt8(ascii: "%"), index + 2 < source.count,
                let high = hexValue(source[index + 1]), let low = hexValue(source[index + 2])
            {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    // MARK: Schemas

    /// A 3.0 multi-format schema wraps the schema itself in `schema`.
    static func schema(of value: JSONValue) -> JSONValue {
        value["schemaFormat"] != nil ? value["schema"] ?? value : value
    }

    /// The inline objects whose properties deserve a table: the schema's own, its items', its map values'.
    static func nestedObjects(in schema: JSONValue) -> [JSONValue] {
        // A $ref is linked, never inlined: that is what keeps a recursive schema finite.
        guard schema["$ref"] == nil else { return [] }
        if schema["properties"]?.object != nil { return [schema] }
        var found: [JSONValue] = []
        if let items = schema["items"] { found += nestedObjects(in: items) }
        if let values = schema["additionalProperties"] { found += nestedObjects(in: values) }
        for keyword in ["allOf", "anyOf", "oneOf"] {
            for member in schema[keyword]?.array ?? [] { found += nestedObjects(in: member) }
        }
        return found
    }

    /// The type column, as markup: `string (date-time)`, `number | string, nullable`, `array of <a>Order</a>`.
    static func typeMarkup(_ schema: JSONValue) -> String {
        if let reference = schema["$ref"]?.string { return referenceLink(reference) }
        var nullable = schema["nullable"] == JSONValue.bool(true)
        var alternatives: [String] = []
        if let variants = (schema["anyOf"] ?? schema["oneOf"])?.array {
            for variant in variants {
                if variant["type"]?.string == "null" { nullable = true } else { alternatives.append(typeMarkup(variant)) }
            }
        } else if let parts = schema["allOf"]?.array {
            alternatives.append(parts.map { typeMarkup($0) }.joined(separator: " &amp; "))
        } else {
            var types = declaredTypes(schema)
            if types.contains("null") { nullable = true }
            types.removeAll { $0 == "null" }
            if types.isEmpty, let inferred = inferredType(schema) { types = [inferred] }
            alternatives = types.map { singleTypeMarkup($0, in: schema) }
        }
        guard !alternatives.isEmpty else { return nullable ? "null" : "any" }
        return alternatives.joined(separator: " | ") + (nullable ? ", <span class=\"nullable\">nullable</span>" : "")
    }

    static func declaredTypes(_ schema: JSONValue) -> [String] {
        switch schema["type"] {
        case .string(let type)?: [type]
        case .array(let types)?: types.compactMap(\.string)
        default: []
        }
    }

    static func inferredType(_ schema: JSONValue) -> String? {
        if schema["properties"] != nil || schema["additionalProperties"] != nil { return "object" }
        return schema["items"] != nil ? "array" : nil
    }

    static func singleTypeMarkup(_ type: String, in schema: JSONValue) -> String {
        switch type {
        case "array":
            return "array of " + (schema["items"].map { typeMarkup($0) } ?? "any")
        case "object":
            // Free-form keys with one schema for the values read better as a map than as an empty object.
            guard schema["properties"] == nil, let values = schema["additionalProperties"], values != JSONValue.bool(false) else {
                return "object"
            }
            let freeForm = values == JSONValue.bool(true) || values.object?.isEmpty == true
            return "map of String to " + (freeForm ? "any" : typeMarkup(values))
        default:
            let format = schema["format"]?.string.map { " (\(HTML.escape($0)))" } ?? ""
            return HTML.escape(type) + format
        }
    }

    static func referenceLink(_ reference: String) -> String {
        let tokens = pointerTokens(reference)
        let anchorPrefixes = ["schemas": "schema", "messages": "message"]
        guard tokens.count == 3, tokens[0] == "components", let kind = anchorPrefixes[tokens[1]] else {
            return "<code>" + HTML.escape(reference) + "</code>"
        }
        let name = HTML.escape(tokens[2])
        return "<a href=\"#\(kind)-\(name)\">\(name)</a>"
    }

    static func literal(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .string(let text): return text
        case .array(let elements):
            let listed = elements.map { literal($0) }
            return "[" + listed.joined(separator: ", ") + "]"
        case .object:
            let listed = sortedMembers(value).map { member in "\(member.key): \(literal(member.value))" }
            return "{" + listed.joined(separator: ", ") + "}"
        }
    }

    /// The document as a script literal; `<` is escaped so a string holding `</script>` cannot end the element.
    static func scriptJSON(_ document: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(document) else { return "null" }
        return String(decoding: data, as: UTF8.self).replacing("<", with: "\\u003c")
    }

    // MARK: Assets

    static let webComponentScript = "https://unpkg.com/@asyncapi/react-component@1.0.0-next.54/browser/standalone/index.js"
    static let webComponentStyles = "https://unpkg.com/@asyncapi/react-component@1.0.0-next.54/styles/default.min.css"

    /// Filters as one types; `?q=` in the page's address fills the box on load, so a search can
    /// be shared as a link.
    static let searchScript = """
        var search = document.getElementById('search');
        function filter() {
          var query = search.value.trim().toLowerCase();
          document.querySelectorAll('section[data-kind]').forEach(function (section) {
            section.hidden = query !== '' && section.textContent.toLowerCase().indexOf(query) === -1;
          });
        }
        search.addEventListener('input', filter);
        var asked = new URLSearchParams(window.location.search).get('q');
        if (asked) { search.value = asked; filter(); }
        """

    static let stylesheet = """
        body { margin: 0; display: flex; font: 15px/1.5 -apple-system, system-ui, "Segoe UI", sans-serif; color: #1f2328; }
        #toc { position: sticky; top: 0; flex: none; box-sizing: border-box; width: 17rem; height: 100vh; overflow-y: auto;
          padding: 1rem; border-right: 1px solid #d0d7de; background: #f6f8fa; font-size: 13px; }
        #toc ul { list-style: none; margin: 0; padding-left: .8rem; }
        #toc > ul { padding-left: 0; }
        #toc a { color: inherit; text-decoration: none; word-break: break-all; }
        #search { width: 100%; box-sizing: border-box; margin-bottom: .75rem; padding: .35rem .5rem; }
        main { flex: 1; min-width: 0; padding: 1rem 2rem 4rem; }
        code, .type { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
        section[data-kind] { margin: 1rem 0; padding: .5rem 1rem; border: 1px solid #d0d7de; border-radius: 6px; }
        .description { white-space: pre-line; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
        dt { font-weight: 600; } dd { margin: 0; }
        dl.bindings { border-left: 2px solid #d0d7de; padding-left: .6rem; }
        table { border-collapse: collapse; margin: .5rem 0; }
        th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
        th { background: #f6f8fa; }
        .action { padding: .05rem .45rem; border-radius: 4px; font-size: .8em; font-weight: 600; }
        .action-receive { background: #dafbe1; } .action-send { background: #ddf4ff; }
        .nullable { color: #9a6700; }
        [hidden] { display: none !important; }
        #asyncapi-cdn { margin-top: 3rem; border-top: 2px solid #d0d7de; }
        """
}
