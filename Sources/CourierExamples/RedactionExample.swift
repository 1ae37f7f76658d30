import Courier
import Logging

/// README, "Security": the redaction tools a broker module (or an application) shows URLs,
/// configuration and foreign error texts with.
func redactionExample(url: String, password: String?, clientErrorText: String, logger: Logger) {
    _ = Redaction.url("nats://alice:s3cret@127.0.0.1:4222")  // "nats://alice:***@127.0.0.1:4222"
    _ = Redaction.properties(["sasl.password": "pw", "acks": "all"])  // ["sasl.password": "***", "acks": "all"]
    let scrubber = SecretScrubber(urls: [url], [password])
    logger.error("connect failed", metadata: ["error": "\(scrubber.scrub(clientErrorText))"])
}
