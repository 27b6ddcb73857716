#ifndef WASLA_CSQLITE_H
#define WASLA_CSQLITE_H
#include <sqlite3.h>
// Extended result codes are macros with expressions, which Swift does not import.
static const int WASLA_SQLITE_CONSTRAINT_UNIQUE = SQLITE_CONSTRAINT_UNIQUE;
static const int WASLA_SQLITE_CONSTRAINT_PRIMARYKEY = SQLITE_CONSTRAINT_PRIMARYKEY;
#endif
