// The compiled form of a `TextPattern` and the machine that runs it: a Thompson NFA as a list of instructions,
// simulated on all of its states at once (a Pike VM, without captures: only "is there a match" is asked). At each
// text position an instruction enters the state list at most once and is stepped at most once, so a run takes at
// most 2 × instructions × (scalars + 1) steps.

struct Program: Sendable {
    enum Instruction: Sendable {
        /// One scalar (folded to lower case when the pattern ignores case).
        case scalar(UInt32)
        /// A class, by index into `sets`.
        case set(Int)
        case anyButNewline
        case assertion(PatternAssertion)
        /// Go on at both.
        case split(Int, Int)
        case jump(Int)
        case match
    }

    private(set) var instructions: [Instruction] = []
    private(set) var sets: [ScalarSet] = []
    /// The program begins with `^` or `\A`: a match can only start at the text's start.
    private(set) var anchoredAtStart = false

    init(_ tree: PatternNode, ignoringCase: Bool) throws(TextPattern.SyntaxError) {
        try emit(tree, ignoringCase: ignoringCase)
        try append(.match)
        if case .assertion(.textStart) = instructions[0] { anchoredAtStart = true }
    }

    // MARK: Compiling

    @discardableResult
    private mutating func append(_ instruction: Instruction) throws(TextPattern.SyntaxError) -> Int {
        guard instructions.count < TextPattern.maxInstructions else {
            throw TextPattern.SyntaxError(
                reason: "the pattern is too large once its repetitions are written out (more than "
                    + "\(TextPattern.maxInstructions) steps)", position: 1)
        }
        instructions.append(instruction)
        return instructions.count - 1
    }

    private mutating func emit(_ node: PatternNode, ignoringCase: Bool) throws(TextPattern.SyntaxError) {
        switch node {
        case .empty:
            break
        case .scalar(let c):
            try append(.scalar(ignoringCase ? Self.lower(c).value : c.value))
        case .set(let set):
            sets.append(set)
            try append(.set(sets.count - 1))
        case .anyButNewline:
            try append(.anyButNewline)
        case .assertion(let a):
            try append(.assertion(a))
        case .concat(let items):
            for item in items { try emit(item, ignoringCase: ignoringCase) }
        case .alternation(let branches):
            // split(next branch): branch; jump(end) — for each branch but the last.
            var exits: [Int] = []
            for branch in branches.dropLast() {
                let split = try append(.split(0, 0))
                try emit(branch, ignoringCase: ignoringCase)
                exits.append(try append(.jump(0)))
                instructions[split] = .split(split + 1, instructions.count)
            }
            try emit(branches[branches.count - 1], ignoringCase: ignoringCase)
            for exit in exits { instructions[exit] = .jump(instructions.count) }
        case .repetition(let inner, let min, let max):
            // A body that compiles to nothing (`()`) stays nothing however often it repeats: skipping it keeps
            // `((){1000}){1000}` from being a billion empty passes. Any other copy adds at least one instruction,
            // so the size limit bounds the work.
            if Self.compilesToNothing(node) { break }
            for _ in 0..<min { try emit(inner, ignoringCase: ignoringCase) }
            if let max {
                // Each optional copy may stop the repetition: split(copy, end); copy; … end.
                var splits: [Int] = []
                for _ in 0..<(max - min) {
                    splits.append(try append(.split(0, 0)))
                    try emit(inner, ignoringCase: ignoringCase)
                }
                for split in splits { instructions[split] = .split(split + 1, instructions.count) }
            } else {
                // loop: split(body, end); body; jump(loop); end.
                let loop = try append(.split(0, 0))
                try emit(inner, ignoringCase: ignoringCase)
                try append(.jump(loop))
                instructions[loop] = .split(loop + 1, instructions.count)
            }
        }
    }

    /// Whether `node` emits no instruction at all.
    static func compilesToNothing(_ node: PatternNode) -> Bool {
        switch node {
        case .empty: true
        case .concat(let items): items.allSatisfy(compilesToNothing)
        case .repetition(let inner, _, let max): max == 0 || compilesToNothing(inner)
        case .scalar, .set, .anyButNewline, .assertion, .alternation: false
        }
    }

    // MARK: Running

    /// Whether the program matches anywhere in `text`, and the instructions it stepped through.
    func run(_ text: String, ignoringCase: Bool) -> (matched: Bool, steps: Int) {
        var machine = Machine(size: instructions.count)
        var scalars = text.unicodeScalars.makeIterator()
        var previous: Unicode.Scalar?
        var current = scalars.next()
        var following = scalars.next()
        var atStart = true
        while true {
            if atStart || !anchoredAtStart {
                var none = EmptyIterator()
                if machine.add(0, toNext: false, instructions, previous, current, following, peekAfter: &none) {
                    return (true, machine.steps)
                }
            }
            guard let c = current, !machine.now.isEmpty || !anchoredAtStart else { return (false, machine.steps) }
            let lower = ignoringCase ? Self.lower(c) : c, upper = ignoringCase ? Self.upper(c) : c
            let folded = lower.value
            machine.next.removeAll()
            var k = 0
            while k < machine.now.count {
                let pc = machine.now.dense[k]
                k += 1
                machine.steps += 1
                let advances: Bool
                switch instructions[pc] {
                case .scalar(let v): advances = v == folded
                case .set(let index): advances = sets[index].contains(c, lower: lower, upper: upper)
                case .anyButNewline: advances = !Self.isNewline(c)
                default: advances = false  // split, jump, assertion, match: followed when added
                }
                if advances, machine.add(pc + 1, toNext: true, instructions, c, following, nil, peekAfter: &scalars) {
                    return (true, machine.steps)
                }
            }
            swap(&machine.now, &machine.next)
            previous = c
            current = following
            following = scalars.next()
            atStart = false
        }
    }

    // MARK: Characters

    static func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.isASCII { return c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c }
        return single(c.properties.lowercaseMapping) ?? c
    }

    static func upper(_ c: Unicode.Scalar) -> Unicode.Scalar {
        if c.isASCII { return c.value >= 0x61 && c.value <= 0x7A ? Unicode.Scalar(c.value - 32)! : c }
        return single(c.properties.uppercaseMapping) ?? c
    }

    /// The mapping when it is one scalar (a few map to two or three, such as ß to SS: those are left as they are).
    private static func single(_ mapping: String) -> Unicode.Scalar? {
        var scalars = mapping.unicodeScalars.makeIterator()
        guard let first = scalars.next(), scalars.next() == nil else { return nil }
        return first
    }

    static func isWord(_ c: Unicode.Scalar?) -> Bool { c.map { ScalarSet.isMember($0, of: .word) } ?? false }

    /// What `.` does not match: the line terminators.
    static func isNewline(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }
}

/// The two state lists of a run and its work stack, allocated once per run.
private struct Machine {
    var now: SparseSet
    var next: SparseSet
    var stack: [Int] = []
    var steps = 0

    init(size: Int) {
        now = SparseSet(capacity: size)
        next = SparseSet(capacity: size)
        stack.reserveCapacity(16)
    }

    /// Adds `pc` and every state reachable from it without consuming a scalar to `next` (or `now`), with the
    /// assertions judged between `before` and `after`. For `$` the scalar after `after` is `afterThat`, or when that
    /// is not given, read from a copy of `rest`. True on reaching `match`.
    mutating func add<I: IteratorProtocol<Unicode.Scalar>>(
        _ pc: Int, toNext: Bool, _ instructions: [Program.Instruction], _ before: Unicode.Scalar?,
        _ after: Unicode.Scalar?, _ afterThat: Unicode.Scalar?, peekAfter rest: inout I
    ) -> Bool {
        stack.removeAll(keepingCapacity: true)
        stack.append(pc)
        while let pc = stack.popLast() {
            if toNext {
                guard !next.contains(pc) else { continue }
                next.insert(pc)
            } else {
                guard !now.contains(pc) else { continue }
                now.insert(pc)
            }
            steps += 1
            switch instructions[pc] {
            case .match:
                return true
            case .jump(let target):
                stack.append(target)
            case .split(let a, let b):
                stack.append(b)
                stack.append(a)
            case .assertion(let a):
                var holds: Bool
                switch a {
                case .textStart: holds = before == nil
                case .textEnd: holds = after == nil
                case .textEndOrFinalNewline:
                    holds = after == nil
                    if after == "\n" {
                        var copy = rest
                        holds = (afterThat ?? copy.next()) == nil
                    }
                case .wordBoundary: holds = Program.isWord(before) != Program.isWord(after)
                case .notWordBoundary: holds = Program.isWord(before) == Program.isWord(after)
                }
                if holds { stack.append(pc + 1) }
            case .scalar, .set, .anyButNewline:
                break  // waits in the list for the next scalar
            }
        }
        return false
    }
}

/// A set of instruction indexes with O(1) insert, membership and clearing, kept in insertion order (Briggs and
/// Torczon's sparse set).
struct SparseSet {
    private(set) var dense: [Int]
    private var sparse: [Int]
    private(set) var count = 0

    init(capacity: Int) {
        dense = Array(repeating: 0, count: capacity)
        sparse = Array(repeating: 0, count: capacity)
    }

    var isEmpty: Bool { count == 0 }

    func contains(_ value: Int) -> Bool {
        let slot = sparse[value]
        return slot < count && dense[slot] == value
    }

    mutating func insert(_ value: Int) {
        dense[count] = value
        sparse[value] = count
        count += 1
    }

    mutating func removeAll() { count = 0 }
}

private struct EmptyIterator: IteratorProtocol {
    mutating func next() -> Unicode.Scalar? { nil }
}
