#ifndef WASLA_CSQLITEVFS_H
#define WASLA_CSQLITEVFS_H

/// The name of the VFS `wasla_wal_vfs_register` adds: the platform's default VFS with write-combining for WAL
/// files (wal_combine.c). Pass it to sqlite3_open_v2.
#define WASLA_WAL_VFS_NAME "wasla-wal"

/// Registers the VFS (not as the default) over the default VFS; safe to call more than once and from several
/// threads. Returns SQLITE_OK or SQLite's error code.
int wasla_wal_vfs_register(void);

/// Process-wide counters: the writes SQLite asked of WAL files, and the writes that reached the file system.
void wasla_wal_vfs_counts(long long *requested, long long *performed);

#endif
