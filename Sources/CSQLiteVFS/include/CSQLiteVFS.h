#ifndef WASLA_CSQLITEVFS_H
#define WASLA_CSQLITEVFS_H

#include <sqlite3.h>

/// The name of the VFS `wasla_wal_vfs_register` adds: the platform's default VFS with write-combining for WAL
/// files (wal_combine.c). Pass it to sqlite3_open_v2.
#define WASLA_WAL_VFS_NAME "wasla-wal"

/// Registers the VFS (not as the default) over the default VFS; safe to call more than once and from several
/// threads. Returns SQLITE_OK or SQLite's error code.
int wasla_wal_vfs_register(void);

/// Gives back the write buffer of the connection's WAL file, if it has one and nothing waits in it (the next
/// buffered write maps it again). For a connection that goes idle after a large transaction, such as the
/// migrations at start. Returns 1 when a buffer was released. Call only on the connection's own thread.
int wasla_wal_vfs_release_buffer(sqlite3 *db);

/// Process-wide counters: the writes SQLite asked of WAL files, and the writes that reached the file system.
void wasla_wal_vfs_counts(long long *requested, long long *performed);

#endif
