#ifndef WASLA_CSQLITE_H
#define WASLA_CSQLITE_H
#include <sqlite3.h>
// Extended result codes are macros with expressions, which Swift does not import.
static const int WASLA_SQLITE_CONSTRAINT_UNIQUE = SQLITE_CONSTRAINT_UNIQUE;
static const int WASLA_SQLITE_CONSTRAINT_PRIMARYKEY = SQLITE_CONSTRAINT_PRIMARYKEY;
// sqlite3_config is variadic, which Swift cannot call. Turns off SQLite's global allocation statistics: every
// sqlite3_malloc and free then skips a global mutex (ProcessBench 30000: 10.1–10.7k msg/s with it, 10.6–11.2k
// without, three runs each). Must run
// before the first connection opens (SQLITE_MISUSE after).
static inline int wasla_sqlite_memstatus_off(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
