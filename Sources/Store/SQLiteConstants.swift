import CSQLite

// A casting macro that Swift does not import: SQLite copies the bytes before the bind call returns.
// Defined in a library target (in main.swift top-level code it would become main-actor isolated).
let SQLITE_TRANSIENT = unsafeBitCast(-1 as Int, to: sqlite3_destructor_type.self)
