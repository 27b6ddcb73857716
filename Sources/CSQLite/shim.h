#ifndef WASLA_CSQLITE_H
#define WASLA_CSQLITE_H
#include <sqlite3.h>
#endif
