#ifndef WASLA_CLINUX_H
#define WASLA_CLINUX_H
// Linux-only syscalls that `import Glibc` does not expose (epoll, eventfd, accept4).
// `_GNU_SOURCE` is defined only in shim.c: defining it in a header Swift imports breaks clean builds.
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (accepted sockets do not inherit O_NONBLOCK).
int wasla_accept4(int fd, struct sockaddr *addr, socklen_t *len);
int wasla_epoll_create(void);
int wasla_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// epoll_wait, writing (events, data) pairs into two parallel arrays so Swift never touches the packed struct.
int wasla_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);
int wasla_eventfd(void);
/// malloc_trim(0) (malloc.h, which `import Glibc` does not expose): 1 when memory went back to the system.
int wasla_malloc_trim(void);
/// mallopt(3) for the three settings the server tunes at start; a negative value leaves that one as it is.
/// Returns 1 when every setting asked for was accepted.
int wasla_malloc_tune(int arena_max, int mmap_threshold, int trim_threshold);
/// SIGTERM and SIGINT through a self-pipe: a handler (any thread may run it) writes the signal's number as one byte
/// to a pipe; returns the pipe's read end, or -1 with errno. Blocking reads of it wait for the next signal.
int wasla_termination_pipe(void);
/// tgkill(2): a signal to one thread of a process (the tests send SIGTERM to the server's main thread alone).
int wasla_tgkill(int tgid, int tid, int sig);
/// pipe2(2) with O_CLOEXEC (the tests read a child server's stderr through it).
int wasla_pipe_cloexec(int fds[2]);
/// posix_spawn of `path` with stdin and stdout on /dev/null, stderr on `stderr_fd`, and every other descriptor
/// closed in the child (the tests start the real binary with it). Returns the pid, or -errno.
int wasla_spawn(const char *path, char *const argv[], char *const envp[], int stderr_fd);
int wasla_eventfd_write(int fd);
int wasla_eventfd_drain(int fd);
/// sendmsg with MSG_NOSIGNAL over an iovec array (writev takes no flags).
ssize_t wasla_sendmsg(int fd, struct iovec *iov, int iovcnt);
/// sendfile(2) from a regular file at *offset (advanced by the bytes sent), retried on EINTR.
ssize_t wasla_sendfile(int out_fd, int in_fd, long long *offset, size_t count);
/// send with MSG_NOSIGNAL.
ssize_t wasla_send(int fd, const void *buf, size_t len);
int wasla_socket_stream(int family);
int wasla_set_int_option(int fd, int level, int name, int value);
/// Raises RLIMIT_NOFILE soft to hard; returns the new soft limit or -1.
long wasla_raise_nofile_limit(void);
/// Current monotonic time in nanoseconds.
uint64_t wasla_monotonic_ns(void);
int wasla_errno(void);
uint64_t wasla_thread_id(void);

static const uint32_t WASLA_EPOLLIN = EPOLLIN;
static const uint32_t WASLA_EPOLLOUT = EPOLLOUT;
static const uint32_t WASLA_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t WASLA_EPOLLET = EPOLLET;
static const uint32_t WASLA_EPOLLERR = EPOLLERR;
static const uint32_t WASLA_EPOLLHUP = EPOLLHUP;
static const int WASLA_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int WASLA_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int WASLA_EPOLL_CTL_DEL = EPOLL_CTL_DEL;

#endif
