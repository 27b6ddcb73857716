import Actors
import Support
import XCTest

final class SendPacerTests: XCTestCase {
    final class Clock: Sendable {
        let now = Locked<Int64>(0)
        var read: @Sendable () -> Int64 { { [now] in now.withLock { $0 } } }
        func advance(_ ms: Int64) { now.withLock { $0 += ms } }
    }

    func testNumberBucketSpreadsABurst() async {
        let clock = Clock()
        let pacer = SendPacer(perNumberPerSecond: 10, clock: clock.read)
        var waits: [Int64] = []
        for i in 0..<15 { waits.append(await pacer.reserve(number: "n1", recipient: "r\(i)")) }
        XCTAssertEqual(waits.prefix(10).filter { $0 == 0 }.count, 10, "a full bucket sends 10 at once")
        XCTAssertEqual(Array(waits.suffix(5)), [100, 200, 300, 400, 500], "then one every 100 ms")
        let other = await pacer.reserve(number: "n2", recipient: "r")
        XCTAssertEqual(other, 0, "each number has its own bucket")
        clock.advance(2000)
        let refilled = await pacer.reserve(number: "n1", recipient: "r")
        XCTAssertEqual(refilled, 0)
    }

    func testRecipientSpacing() async {
        let clock = Clock()
        let pacer = SendPacer(perNumberPerSecond: 1000, perRecipientIntervalMillis: 6000, clock: clock.read)
        let first = await pacer.reserve(number: "n", recipient: "alice")
        let second = await pacer.reserve(number: "n", recipient: "alice")
        let bob = await pacer.reserve(number: "n", recipient: "bob")
        XCTAssertEqual([first, second, bob], [0, 6000, 0])
    }
}
