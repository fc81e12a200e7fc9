/* dockyard-shim: one container's monitor, after its creation.
 *
 * dockyard.shim.launch creates the container (in Python, with the runtime) and then execs this
 * program in the same process, which stays the parent (subreaper) of the container's init. It
 * holds the container's stdio (pipes or the pty master), writes the json-file log, serves
 * shim.sock for the daemon and records the exit status in exit.json. The daemon may come and
 * go meanwhile. It is written in C because one runs per container: an idle one costs a few
 * pages, where a forked Python interpreter kept megabytes private.
 *
 * shim.sock: every connection opens with one request line of words, answered by one JSON line:
 *   state                      {"pid": N, "status": "running"|"exited", "exit": null|EXIT}
 *   wait                       EXIT, once the container has exited
 *   attach STDIN STDOUT STDERR {"ok": true, "tty": BOOL}, then the streams (flags are 0 or 1)
 *   resize HEIGHT WIDTH        {"ok": true}
 *   close_stdin                {"ok": true}
 * where EXIT is {"exit_code": N, "finished_at": "RFC 3339"} and a failure is {"error": "..."}.
 * After an attach answer, output flows in Docker's 8-byte frames (raw with a TTY) and what
 * the daemon sends is the container's stdin; the daemon's half-close ends that input.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "jsonlog.h"

/* A client that reads slower than the container writes is dropped past this much backlog. */
#define MAX_CLIENT_BACKLOG (64u << 20)
/* Attached clients are not read while this much of their input waits for the container. */
#define STDIN_HIGH_WATER (1u << 20)
#define MAX_REQUEST 1024
#define READ_CHUNK (32 * 1024)
/* After the exit: read what the container wrote for at most this long (others may hold the
 * pipes), and linger at most this long idle while clients still have output or requests. */
#define DRAIN_MS 1000
#define LINGER_MS 5000

struct buffer {
    char *data;
    size_t len, cap;
};

struct client {
    int fd;
    bool attached, waiting, closing, read_eof, dead;
    bool sends_stdin;
    bool wants[2]; /* stdout, stderr */
    struct buffer inbox, outbox;
    struct client *next;
};

static struct {
    const char *dir;
    pid_t pid;
    bool tty, stdin_once;
    int listen_fd, signal_fd;
    int output_fd[2]; /* stdout and stderr pipes; with a TTY the pty master is output_fd[0] */
    int pty_fd;
    int stdin_fd; /* the stdin pipe's write end, or the pty master; -1: none */
    bool stdin_closed;
    struct buffer stdin_pending;
    bool logging;
    bool exited;
    int exit_code;
    char finished_at[TIMESTAMP_SIZE];
    struct client *clients;
} m = {.listen_fd = -1, .signal_fd = -1, .output_fd = {-1, -1}, .pty_fd = -1, .stdin_fd = -1};

static struct json_log log_file;
static char chunk[READ_CHUNK];

static void warn(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "dockyard-shim %s: ", m.dir ? m.dir : "");
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}

/* Without its monitor the container could not be watched: it goes too. */
static void die(const char *what)
{
    warn("%s: %s", what, strerror(errno));
    if (m.pid > 0 && !m.exited)
        kill(m.pid, SIGKILL);
    exit(1);
}

/* -- buffers ------------------------------------------------------------------------------ */

static int buffer_append(struct buffer *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* Drops the first len bytes; an emptied buffer gives its memory back. */
static void buffer_consume(struct buffer *b, size_t len)
{
    if (len < b->len) {
        memmove(b->data, b->data + len, b->len - len);
        b->len -= len;
        return;
    }
    free(b->data);
    *b = (struct buffer){0};
}

/* -- clients ------------------------------------------------------------------------------ */

static void drop(struct client *c)
{
    c->dead = true;
}

static void flush_client(struct client *c)
{
    while (c->outbox.len && !c->dead) {
        ssize_t n = send(c->fd, c->outbox.data, c->outbox.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                drop(c);
            return;
        }
        buffer_consume(&c->outbox, (size_t)n);
    }
    if (!c->outbox.len && c->closing)
        drop(c);
}

static void send_client(struct client *c, const void *data, size_t len)
{
    if (c->dead)
        return;
    if (c->outbox.len + len > MAX_CLIENT_BACKLOG || buffer_append(&c->outbox, data, len) < 0) {
        drop(c);
        return;
    }
    flush_client(c);
}

static void reply(struct client *c, bool close_after, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (n < 0 || n >= (int)sizeof line - 1)
        n = snprintf(line, sizeof line - 1, "{\"error\": \"reply too long\"}");
    line[n++] = '\n';
    if (close_after)
        c->closing = true;
    send_client(c, line, (size_t)n);
}

static void reply_exit(struct client *c)
{
    reply(c, true, "{\"exit_code\": %d, \"finished_at\": \"%s\"}", m.exit_code, m.finished_at);
}

/* After the exit: does a client still have output coming, or a request not yet answered? */
static bool clients_in_progress(void)
{
    for (struct client *c = m.clients; c; c = c->next)
        if (!c->dead && (c->outbox.len || (!c->attached && !c->closing)))
            return true;
    return false;
}

static void sweep_clients(void)
{
    struct client **link = &m.clients;
    while (*link) {
        struct client *c = *link;
        if (c->dead) {
            *link = c->next;
            close(c->fd);
            free(c->inbox.data);
            free(c->outbox.data);
            free(c);
        } else {
            link = &c->next;
        }
    }
}

static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(m.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                warn("accept: %s", strerror(errno));
            return;
        }
        struct client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->next = m.clients;
        m.clients = c;
    }
}

/* -- the container's stdin ---------------------------------------------------------------- */

static void flush_stdin(void)
{
    while (m.stdin_pending.len && m.stdin_fd >= 0) {
        ssize_t n = write(m.stdin_fd, m.stdin_pending.data, m.stdin_pending.len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                buffer_consume(&m.stdin_pending, m.stdin_pending.len); /* nobody reads it */
            break;
        }
        buffer_consume(&m.stdin_pending, (size_t)n);
    }
    /* A closed pipe stdin is closed once what was sent before has been written. */
    if (m.stdin_closed && !m.tty && !m.stdin_pending.len && m.stdin_fd >= 0) {
        close(m.stdin_fd);
        m.stdin_fd = -1;
    }
}

static void write_stdin(const char *data, size_t len)
{
    if (m.stdin_fd < 0 || m.stdin_closed)
        return;
    if (buffer_append(&m.stdin_pending, data, len) < 0)
        warn("out of memory: %zu bytes of stdin lost", len);
    flush_stdin();
}

static void close_stdin(void)
{
    if (m.stdin_fd < 0 || m.stdin_closed)
        return;
    if (m.tty)
        buffer_append(&m.stdin_pending, "\x04", 1); /* the end of a terminal's input is ^D */
    m.stdin_closed = true;
    flush_stdin();
}

/* -- requests ----------------------------------------------------------------------------- */

static void request(struct client *c, char *line)
{
    char *words[5] = {0};
    int count = 0;
    for (char *word = strtok(line, " \r"); word && count < 5; word = strtok(NULL, " \r"))
        words[count++] = word;
    const char *op = count ? words[0] : "";
    if (!strcmp(op, "state")) {
        if (m.exited)
            reply(c, true,
                  "{\"pid\": %d, \"status\": \"exited\", \"exit\": "
                  "{\"exit_code\": %d, \"finished_at\": \"%s\"}}",
                  m.pid, m.exit_code, m.finished_at);
        else
            reply(c, true, "{\"pid\": %d, \"status\": \"running\", \"exit\": null}", m.pid);
    } else if (!strcmp(op, "wait")) {
        if (m.exited)
            reply_exit(c);
        else
            c->waiting = true;
    } else if (!strcmp(op, "attach") && count == 4) {
        c->sends_stdin = !strcmp(words[1], "1") && m.stdin_fd >= 0 && !m.stdin_closed;
        c->wants[LOG_STDOUT] = !strcmp(words[2], "1");
        c->wants[LOG_STDERR] = !strcmp(words[3], "1");
        c->attached = true;
        reply(c, m.exited, "{\"ok\": true, \"tty\": %s}", m.tty ? "true" : "false");
    } else if (!strcmp(op, "resize") && count == 3) {
        struct winsize size = {.ws_row = (unsigned short)atoi(words[1]),
                               .ws_col = (unsigned short)atoi(words[2])};
        if (m.pty_fd >= 0 && ioctl(m.pty_fd, TIOCSWINSZ, &size) < 0)
            reply(c, true, "{\"error\": \"resize: %s\"}", strerror(errno));
        else
            reply(c, true, "{\"ok\": true}");
    } else if (!strcmp(op, "close_stdin")) {
        close_stdin();
        reply(c, true, "{\"ok\": true}");
    } else {
        reply(c, true, "{\"error\": \"unknown request\"}");
    }
}

static void read_client(struct client *c)
{
    ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        n = 0;
    }
    if (c->attached) {
        if (n > 0) {
            if (c->sends_stdin)
                write_stdin(chunk, (size_t)n);
            return;
        }
        /* The end of the client's input: output keeps flowing until the container exits. */
        c->read_eof = true;
        if (c->sends_stdin && m.stdin_once)
            close_stdin();
        c->sends_stdin = false;
        return;
    }
    if (n == 0) {
        drop(c);
        return;
    }
    if (c->inbox.len + (size_t)n > MAX_REQUEST || buffer_append(&c->inbox, chunk, (size_t)n)) {
        reply(c, true, "{\"error\": \"request too long\"}");
        return;
    }
    char *newline;
    while (!c->attached && !c->closing &&
           (newline = memchr(c->inbox.data, '\n', c->inbox.len))) {
        size_t len = (size_t)(newline - c->inbox.data);
        char line[MAX_REQUEST + 1];
        memcpy(line, c->inbox.data, len);
        line[len] = '\0';
        buffer_consume(&c->inbox, len + 1);
        request(c, line);
    }
    if (c->attached && c->inbox.len) { /* stdin sent right behind the attach request */
        if (c->sends_stdin)
            write_stdin(c->inbox.data, c->inbox.len);
        buffer_consume(&c->inbox, c->inbox.len);
    }
}

/* -- the container's output and exit ------------------------------------------------------ */

static void read_output(int stream)
{
    int fd = m.output_fd[stream];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        if (errno != EIO) /* EIO: the pty's last slave closed */
            warn("reading the container's output: %s", strerror(errno));
        n = 0;
    }
    if (n == 0) {
        if (fd != m.pty_fd)
            close(fd);
        m.output_fd[stream] = -1;
        return;
    }
    if (m.logging)
        json_log_write(&log_file, (enum log_stream)stream, chunk, (size_t)n);
    unsigned char header[8] = {(unsigned char)(stream + 1), 0, 0, 0,
                               (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                               (unsigned char)(n >> 8), (unsigned char)n};
    for (struct client *c = m.clients; c; c = c->next) {
        if (!c->attached || c->dead || !c->wants[stream])
            continue;
        if (!m.tty)
            send_client(c, header, sizeof header);
        send_client(c, chunk, (size_t)n);
    }
}

static void drain_outputs(void)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        struct pollfd fds[2];
        int streams[2], count = 0;
        for (int stream = 0; stream < 2; stream++)
            if (m.output_fd[stream] >= 0) {
                fds[count] = (struct pollfd){.fd = m.output_fd[stream], .events = POLLIN};
                streams[count++] = stream;
            }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (!count || elapsed >= DRAIN_MS || poll(fds, (nfds_t)count, (int)(DRAIN_MS - elapsed)) <= 0)
            break;
        for (int i = 0; i < count; i++)
            if (fds[i].revents)
                read_output(streams[i]);
    }
    for (int stream = 0; stream < 2; stream++)
        if (m.output_fd[stream] >= 0 && m.output_fd[stream] != m.pty_fd)
            close(m.output_fd[stream]);
    m.output_fd[0] = m.output_fd[1] = -1;
}

/* exit.json, written so that a crash leaves either the old state or the whole new file. */
static void record_exit(void)
{
    char path[4096], tmp[4096], text[128];
    snprintf(path, sizeof path, "%s/exit.json", m.dir);
    snprintf(tmp, sizeof tmp, "%s/exit.json.tmp", m.dir);
    int len = snprintf(text, sizeof text, "{\"exit_code\": %d, \"finished_at\": \"%s\"}",
                       m.exit_code, m.finished_at);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
        warn("writing %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        warn("renaming %s: %s", tmp, strerror(errno));
        return;
    }
    int dir = open(m.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
}

static void container_exited(int status)
{
    m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    drain_outputs();
    format_timestamp(m.finished_at);
    if (m.logging)
        json_log_close(&log_file);
    m.logging = false;
    record_exit();
    m.exited = true;
    if (m.pty_fd >= 0) {
        close(m.pty_fd);
        m.pty_fd = -1;
    }
    if (m.stdin_fd >= 0 && !m.tty)
        close(m.stdin_fd);
    m.stdin_fd = -1;
    buffer_consume(&m.stdin_pending, m.stdin_pending.len);
    for (struct client *c = m.clients; c; c = c->next) {
        if (c->waiting)
            reply_exit(c);
        else if (c->attached) {
            c->closing = true;
            flush_client(c);
        }
    }
}

static void reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (pid == m.pid && !m.exited)
            container_exited(status);
    }
}

/* -- the loop ----------------------------------------------------------------------------- */

enum source { LISTENER, SIGNALS, OUTPUT, STDIN, CLIENT };

struct watch {
    enum source source;
    int stream;
    struct client *client;
};

static void serve(void)
{
    struct pollfd *fds = NULL;
    struct watch *watches = NULL;
    size_t capacity = 0;
    for (;;) {
        sweep_clients();
        if (m.exited) {
            accept_clients(); /* who connected just before the exit gets an answer too */
            if (!clients_in_progress())
                return;
        }
        size_t needed = 5;
        for (struct client *c = m.clients; c; c = c->next)
            needed++;
        if (needed > capacity) {
            capacity = needed * 2;
            fds = realloc(fds, capacity * sizeof *fds);
            watches = realloc(watches, capacity * sizeof *watches);
            if (!fds || !watches)
                die("allocating the poll set");
        }
        size_t count = 0;
#define WATCH(fd_, events_, ...)                                                      \
    do {                                                                              \
        fds[count] = (struct pollfd){.fd = (fd_), .events = (short)(events_)};       \
        watches[count++] = (struct watch){__VA_ARGS__};                               \
    } while (0)
        WATCH(m.listen_fd, POLLIN, .source = LISTENER);
        WATCH(m.signal_fd, POLLIN, .source = SIGNALS);
        for (int stream = 0; stream < 2; stream++)
            if (m.output_fd[stream] >= 0)
                WATCH(m.output_fd[stream], POLLIN, .source = OUTPUT, .stream = stream);
        if (m.stdin_pending.len && m.stdin_fd >= 0)
            WATCH(m.stdin_fd, POLLOUT, .source = STDIN);
        for (struct client *c = m.clients; c; c = c->next) {
            bool stdin_full = c->sends_stdin && m.stdin_pending.len >= STDIN_HIGH_WATER;
            short events = (c->read_eof || stdin_full ? 0 : POLLIN) | (c->outbox.len ? POLLOUT : 0);
            if (events) /* with nothing to watch, a hung-up peer would wake poll forever */
                WATCH(c->fd, events, .source = CLIENT, .client = c);
        }
#undef WATCH
        int ready = poll(fds, (nfds_t)count, m.exited ? LINGER_MS : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (ready == 0)
            return; /* lingering after the exit, and nobody read for LINGER_MS */
        for (size_t i = 0; i < count; i++) {
            short revents = fds[i].revents;
            struct watch *w = &watches[i];
            if (!revents)
                continue;
            switch (w->source) {
            case LISTENER:
                accept_clients();
                break;
            case SIGNALS: {
                struct signalfd_siginfo info;
                while (read(m.signal_fd, &info, sizeof info) > 0)
                    ;
                reap();
                break;
            }
            case OUTPUT:
                if (m.output_fd[w->stream] >= 0)
                    read_output(w->stream);
                break;
            case STDIN:
                flush_stdin();
                break;
            case CLIENT:
                if (w->client->dead)
                    break;
                if (revents & (POLLIN | POLLHUP | POLLERR))
                    read_client(w->client);
                if (revents & POLLOUT)
                    flush_client(w->client);
                break;
            }
        }
    }
}

/* -- setup -------------------------------------------------------------------------------- */

static int fd_argument(const char *text)
{
    char *end;
    long fd = strtol(text, &end, 10);
    if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
        warn("not an open file descriptor: %s", text);
        exit(2);
    }
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    return (int)fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dockyard-shim --dir DIR --pid PID --listen-fd FD --ready-fd FD\n"
            "         (--stdout-fd FD --stderr-fd FD | --pty-fd FD) [--stdin-fd FD]\n"
            "         [--stdin-once] [--log PATH [--log-max-size BYTES] [--log-max-file N]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"dir", required_argument, NULL, 'd'},
        {"pid", required_argument, NULL, 'p'},
        {"listen-fd", required_argument, NULL, 'l'},
        {"ready-fd", required_argument, NULL, 'r'},
        {"stdout-fd", required_argument, NULL, 'o'},
        {"stderr-fd", required_argument, NULL, 'e'},
        {"pty-fd", required_argument, NULL, 't'},
        {"stdin-fd", required_argument, NULL, 'i'},
        {"stdin-once", no_argument, NULL, 'O'},
        {"log", required_argument, NULL, 'L'},
        {"log-max-size", required_argument, NULL, 'S'},
        {"log-max-file", required_argument, NULL, 'F'},
        {0},
    };
    const char *log_path = NULL;
    long long log_max_size = 0;
    int log_max_file = 1, ready_fd = -1, option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'd': m.dir = optarg; break;
        case 'p': m.pid = (pid_t)atoi(optarg); break;
        case 'l': m.listen_fd = fd_argument(optarg); break;
        case 'r': ready_fd = fd_argument(optarg); break;
        case 'o': m.output_fd[LOG_STDOUT] = fd_argument(optarg); break;
        case 'e': m.output_fd[LOG_STDERR] = fd_argument(optarg); break;
        case 't': m.pty_fd = m.output_fd[LOG_STDOUT] = m.stdin_fd = fd_argument(optarg);
                  m.tty = true; break;
        case 'i': m.stdin_fd = fd_argument(optarg); break;
        case 'O': m.stdin_once = true; break;
        case 'L': log_path = optarg; break;
        case 'S': log_max_size = atoll(optarg); break;
        case 'F': log_max_file = atoi(optarg); break;
        default: usage();
        }
    }
    if (!m.dir || m.pid <= 0 || m.listen_fd < 0 || ready_fd < 0 || optind != argc)
        usage();

    /* Orphans of the container are re-parented to us (runc's init's parent has exited). */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    signal(SIGPIPE, SIG_IGN);
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    sigprocmask(SIG_BLOCK, &child, NULL);
    m.signal_fd = signalfd(-1, &child, SFD_NONBLOCK | SFD_CLOEXEC);
    if (m.signal_fd < 0)
        die("signalfd");
    int fds[] = {m.listen_fd, m.output_fd[0], m.output_fd[1], m.stdin_fd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    if (log_path) {
        if (json_log_open(&log_file, log_path, log_max_size, log_max_file) < 0)
            die(log_path);
        m.logging = true;
    }
    dprintf(ready_fd, "{\"pid\": %d}\n", m.pid);
    close(ready_fd);
    reap(); /* the container may already be gone */
    serve();
    return 0;
}
