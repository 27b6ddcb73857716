#define _GNU_SOURCE  // accept4, pthread ids: only here, never in a header Swift imports
#include <malloc.h>
#include <sys/sendfile.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include "CLinux.h"

int wasla_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int wasla_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int wasla_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int wasla_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[512];
    if (max > 512) max = 512;
    int n;
    do { n = epoll_wait(epfd, evs, max, timeout_ms); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) { events[i] = evs[i].events; data[i] = evs[i].data.u64; }
    return n;
}

int wasla_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int wasla_eventfd_write(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    return n == sizeof one || (n < 0 && errno == EAGAIN) ? 0 : -1;  // EAGAIN: counter full, a wake is pending anyway
}

int wasla_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n;
    do { n = read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    return n == sizeof value ? 0 : -1;
}

ssize_t wasla_sendmsg(int fd, struct iovec *iov, int iovcnt) {
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)iovcnt;
    ssize_t n;
    do { n = sendmsg(fd, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t wasla_send(int fd, const void *buf, size_t len) {
    ssize_t n;
    do { n = send(fd, buf, len, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

int wasla_socket_stream(int family) {
    return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int wasla_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

long wasla_raise_nofile_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    }
    return (long)rl.rlim_cur;
}

uint64_t wasla_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int wasla_errno(void) { return errno; }

uint64_t wasla_thread_id(void) { return (uint64_t)syscall(SYS_gettid); }

ssize_t wasla_sendfile(int out_fd, int in_fd, long long *offset, size_t count) {
    off_t off = (off_t)*offset;
    ssize_t n;
    do { n = sendfile(out_fd, in_fd, &off, count); } while (n < 0 && errno == EINTR);
    *offset = (long long)off;
    return n;
}

int wasla_malloc_trim(void) { return malloc_trim(0); }

int wasla_malloc_tune(int arena_max, int mmap_threshold, int trim_threshold) {
    int ok = 1;
    if (arena_max >= 0 && mallopt(M_ARENA_MAX, arena_max) != 1) ok = 0;
    if (mmap_threshold >= 0 && mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1) ok = 0;
    if (trim_threshold >= 0 && mallopt(M_TRIM_THRESHOLD, trim_threshold) != 1) ok = 0;
    return ok;
}

static int wasla_signal_write_fd = -1;

/* Async-signal-safe: write(2) only, errno kept. A full pipe drops the byte: one pending stop is enough. */
static void wasla_on_termination(int sig) {
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(wasla_signal_write_fd, &b, 1);
    (void)ignored;
    errno = saved;
}

int wasla_termination_pipe(void) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
    wasla_signal_write_fd = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wasla_on_termination;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) return -1;
    /* Threads that block the signals (libdispatch's workers do) leave it to the others; none must block it all. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return fds[0];
}

int wasla_tgkill(int tgid, int tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }

int wasla_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int wasla_spawn(const char *path, char *const argv[], char *const envp[], int stderr_fd) {
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0) return -ENOMEM;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, path, &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? (int)pid : -rc;
}
