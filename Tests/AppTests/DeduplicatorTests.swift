import Actors
import XCTest

/// The bounded set in front of the unique index: it forgets the oldest hash once full, never a newer one.
final class DeduplicatorTests: XCTestCase {
    func key(_ i: UInt8) -> EventHashKey { EventHashKey([UInt8](repeating: i, count: 32)) }

    func testForgetsTheOldestOnceFull() async {
        let d = Deduplicator(capacity: 3)
        for i: UInt8 in 1...3 { await d.remember(key(i)) }
        await d.remember(key(2))  // already known: changes nothing, evicts nothing
        var known = [Bool]()
        for i: UInt8 in 1...3 { known.append(await d.contains(key(i))) }
        XCTAssertEqual(known, [true, true, true])
        await d.remember(key(4))
        await d.remember(key(5))
        known = []
        for i: UInt8 in 1...5 { known.append(await d.contains(key(i))) }
        XCTAssertEqual(known, [false, false, true, true, true], "1 and 2 forgotten, in insertion order")
        let count = await d.count
        XCTAssertEqual(count, 3)
        for i: UInt8 in 6...10 { await d.remember(key(i)) }
        known = []
        for i: UInt8 in 1...10 { known.append(await d.contains(key(i))) }
        XCTAssertEqual(known, [false, false, false, false, false, false, false, true, true, true], "the ring wraps")
    }
}
