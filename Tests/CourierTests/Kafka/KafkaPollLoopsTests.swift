@testable import CourierKafka
@_spi(BrokerModule) import Courier
import Foundation
import Synchronization
import Testing

/// The Kafka poll loops' lifecycle as values, without librdkafka: iterations are counted, and each
/// waits a little as librdkafka's poll would.
@Suite("Kafka poll loops: driven by the transport's run, joined by its close")
struct KafkaPollLoopsTests {
    /// A loop whose iterations and `finally` are counted.
    final class CountedLoop: Sendable {
        final class Counters: Sendable {
            let iterations = Atomic(0)
            let finals = Atomic(0)
            let polled = Latch()
        }

        let counters = Counters()
        let loop: KafkaPollLoop
        var iterations: Int { counters.iterations.load(ordering: .relaxed) }
        var finals: Int { counters.finals.load(ordering: .relaxed) }
        var polled: Latch { counters.polled }

        init() {
            let counters = self.counters
            loop = KafkaPollLoop(name: "test.poll") {
                counters.iterations.add(1, ordering: .relaxed)
                counters.polled.open()
                usleep(2_000)
            } finally: {
                counters.finals.add(1, ordering: .relaxed)
            }
        }
    }

    @Test("run() drives the loops added before it and while it runs; close() returns once each stopped, and run() with it")
    func runDrivesAndCloseJoins() async throws {
        let loops = KafkaPollLoops()
        let early = CountedLoop()
        loops.add(early.loop)
        let run = Task { await loops.run() }
        await early.polled.wait()
        let late = CountedLoop()
        loops.add(late.loop)
        await late.polled.wait()
        #expect(await early.loop.stop())
        #expect(await late.loop.stop())
        #expect(!early.loop.isOpen && !late.loop.isOpen)
        let afterStop = early.iterations
        await loops.close()
        await run.value
        #expect(early.iterations == afterStop, "a stopped loop polled again")
        #expect(early.finals == 1)
        #expect(late.finals == 1)
    }

    @Test("without run(), ensureDriven() drives the loops in a task of their own; a later run() joins it and returns with close()")
    func drivenWithoutRun() async throws {
        let loops = KafkaPollLoops()
        let producer = CountedLoop()
        loops.add(producer.loop)
        try await Task.sleep(for: .milliseconds(50))
        #expect(producer.iterations == 0, "a loop polled before anything drove it")
        loops.ensureDriven()
        await producer.polled.wait()
        let run = Task { await loops.run() }
        await producer.loop.stop()
        await loops.close()
        await run.value
        #expect(producer.finals == 1)
    }

    @Test("a loop stopped before it was ever driven runs its finally once and is never polled")
    func stoppedBeforeDriven() async throws {
        let loops = KafkaPollLoops()
        let loop = CountedLoop()
        loops.add(loop.loop)
        #expect(loop.loop.isOpen)
        #expect(await loop.loop.stop())
        #expect(!(await loop.loop.stop()), "only the first stop() stops")
        loops.ensureDriven()
        await loops.close()
        #expect(loop.iterations == 0)
        #expect(loop.finals == 1)
    }
}
