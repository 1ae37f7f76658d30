public import ArgumentParser
public import Courier
import Foundation

/// Where and how to write an AsyncAPI document.
public struct AsyncAPIFile: Sendable, Hashable {
    /// The file; `-` for standard output.
    public var output: String
    /// `json`, `yaml` or `html` (the page, ``AsyncAPIPage``); nil for the output's extension
    /// (`.yaml`, `.yml`: YAML; `.html`: the page; JSON otherwise).
    public var format: String?
    public var version: AsyncAPIVersion

    public init(output: String, format: String? = nil, version: AsyncAPIVersion = .v3_0_0) {
        self.output = output
        self.format = format
        self.version = version
    }

    /// Writes the document of `brokers`. Nothing is connected: the document is made from what
    /// the brokers declared.
    public func write(brokers: [any AsyncAPIDescribable], info: AsyncAPIDocument.Info = .init()) throws {
        let document = try AsyncAPIDocument(brokers: brokers, info: info, version: version)
        let data: Data
        switch format ?? Self.format(ofFile: output) {
        case "yaml": data = Data(try document.yaml().utf8)
        case "html": data = Data(AsyncAPIPage.html(for: document.value).utf8)
        default: data = try document.json()
        }
        if output == "-" {
            FileHandle.standardOutput.write(data)
        } else {
            try data.write(to: URL(fileURLWithPath: output))
        }
    }

    private static func format(ofFile path: String) -> String {
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") { return "yaml" }
        return path.hasSuffix(".html") ? "html" : "json"
    }
}

/// The options of a command that writes an AsyncAPI document: `--output FILE` (`-` for standard
/// output), `--format json|yaml|html` (by default from the file's extension), `--asyncapi-version
/// 3.0.0|2.6.0`.
public struct AsyncAPIFileOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Where to write the AsyncAPI document ('-' for standard output).")
    public var output: String = "asyncapi.json"

    @Option(help: "json, yaml or html (the page); by default from the output's extension.")
    public var format: String?

    @Option(name: .customLong("asyncapi-version"), help: "3.0.0 or 2.6.0.")
    public var version: String = AsyncAPIVersion.v3_0_0.rawValue

    public init() {}

    public func validate() throws {
        guard AsyncAPIVersion(rawValue: version) != nil else {
            throw ValidationError("unknown AsyncAPI version '\(version)': 3.0.0 or 2.6.0")
        }
        guard format.map({ ["json", "yaml", "html"].contains($0) }) ?? true else {
            throw ValidationError("unknown format '\(format ?? "")': json, yaml or html")
        }
    }

    /// What the options ask for.
    public var file: AsyncAPIFile {
        AsyncAPIFile(output: output, format: format, version: AsyncAPIVersion(rawValue: version) ?? .v3_0_0)
    }
}

/// A subcommand that writes the service's AsyncAPI document without starting its brokers:
/// adopt it in a command of your own, which declares the subscribers as the service does.
///
/// ```swift
/// struct WriteAsyncAPI: AsyncAPICommand {
///     static let configuration = CommandConfiguration(commandName: "asyncapi")
///     @OptionGroup var file: AsyncAPIFileOptions
///     func brokers() throws -> [any AsyncAPIDescribable] { [try makeOrdersBroker()] }
/// }
/// ```
public protocol AsyncAPICommand: ParsableCommand {
    /// Where and how to write.
    var file: AsyncAPIFileOptions { get }
    /// The document's `info`.
    var info: AsyncAPIDocument.Info { get }
    /// The brokers, with their subscribers declared; never connected.
    func brokers() throws -> [any AsyncAPIDescribable]
}

extension AsyncAPICommand {
    public var info: AsyncAPIDocument.Info { .init() }

    public func run() throws {
        try file.file.write(brokers: brokers(), info: info)
    }
}
