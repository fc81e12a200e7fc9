/* probe: the system calls the runtime tests need that busybox cannot make.
 *
 * Built once per test session with `gcc -static -O2` into the test rootfs as /bin/probe.
 * Each command tries one thing and prints "<command>: ok" or "<command>: <ERRNO NAME>", so
 * runc and dockyard-runtime can be compared line by line. Exit status: 0 if it worked, 1 if
 * the kernel refused, 2 on bad usage.
 *
 *   probe mount DIR            mount a tmpfs on DIR
 *   probe umount DIR           umount2(DIR, MNT_DETACH)
 *   probe unshare NS           unshare(2) one namespace: user mnt uts net ipc pid cgroup
 *   probe pivot_root           pivot_root(".", ".") from /
 *   probe init_module          init_module and finit_module with an empty module
 *   probe ptrace PID           PTRACE_ATTACH to PID
 *   probe rawsocket            socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
 *   probe sethostname NAME     sethostname(NAME)
 *   probe read FILE            open FILE and read up to 4 KiB: "read: N bytes"
 *   probe write FILE TEXT      open FILE for writing and write TEXT
 *   probe hog MIB              allocate and touch MIB mebibytes, printing each 16 MiB
 *   probe forks N              fork up to N sleeping children; print how many it got
 *   probe mkdir DIR            mkdir(DIR) through the raw system call
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(const char *what, long result) {
    if (result < 0) {
        const char *name = strerrorname_np(errno);
        printf("%s: %s\n", what, name ? name : "unknown errno");
        return 1;
    }
    printf("%s: ok\n", what);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: probe COMMAND [ARGS] (see probe.c)\n");
    return 2;
}

static int unshare_one(const char *name) {
    static const struct { const char *name; int flag; } kinds[] = {
        {"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},   {"uts", CLONE_NEWUTS},
        {"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},  {"pid", CLONE_NEWPID},
        {"cgroup", CLONE_NEWCGROUP},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return report("unshare", unshare(kinds[i].flag));
    return usage();
}

static int init_module_probe(void) {
    /* Both entry points: the seccomp profile and CAP_SYS_MODULE must each stop them. */
    int failed = report("init_module", syscall(SYS_init_module, "", 0UL, ""));
    int fd = open("/bin/probe", O_RDONLY | O_CLOEXEC);
    failed |= report("finit_module", syscall(SYS_finit_module, fd, "", 0));
    return failed;
}

static int read_probe(const char *path) {
    char buffer[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return report("open", -1);
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0)
        return report("read", -1);
    printf("read: %zd bytes\n", got); /* a masked file reads as empty */
    return 0;
}

static int write_probe(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return report("open", -1);
    return report("write", write(fd, text, strlen(text)));
}

static int hog(long mib) {
    const long chunk = 1 << 20;
    setvbuf(stdout, NULL, _IONBF, 0); /* progress must reach the pipe before the OOM kill */
    for (long i = 0; i < mib; i++) {
        char *block = malloc(chunk);
        if (!block)
            return report("malloc", -1);
        memset(block, 1, chunk); /* touching the pages is what charges them to the cgroup */
        if (i % 16 == 15)
            printf("hog: %ld MiB\n", i + 1);
    }
    printf("hog: survived\n");
    return 0;
}

static int forks(long wanted) {
    long got = 0;
    int error = 0;
    pid_t *children = calloc(wanted, sizeof *children);
    for (; got < wanted; got++) {
        pid_t pid = fork();
        if (pid < 0) {
            error = errno;
            break;
        }
        if (pid == 0) {
            pause();
            _exit(0);
        }
        children[got] = pid;
    }
    for (long i = 0; i < got; i++)
        kill(children[i], SIGKILL);
    while (wait(NULL) > 0)
        ;
    printf("forks: %ld of %ld\n", got, wanted);
    if (error) {
        errno = error;
        return report("fork", -1);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return usage();
    const char *command = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(command, "mount") == 0 && argc == 3)
        return report("mount", mount("tmpfs", argv[2], "tmpfs", 0, NULL));
    if (strcmp(command, "umount") == 0 && argc == 3)
        return report("umount", umount2(argv[2], MNT_DETACH));
    if (strcmp(command, "unshare") == 0 && argc == 3)
        return unshare_one(argv[2]);
    if (strcmp(command, "pivot_root") == 0 && argc == 2) {
        if (chdir("/") < 0)
            return report("chdir", -1);
        return report("pivot_root", syscall(SYS_pivot_root, ".", "."));
    }
    if (strcmp(command, "init_module") == 0 && argc == 2)
        return init_module_probe();
    if (strcmp(command, "ptrace") == 0 && argc == 3)
        return report("ptrace", ptrace(PTRACE_ATTACH, (pid_t)atol(argv[2]), NULL, NULL));
    if (strcmp(command, "rawsocket") == 0 && argc == 2)
        return report("rawsocket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    if (strcmp(command, "sethostname") == 0 && argc == 3)
        return report("sethostname", sethostname(argv[2], strlen(argv[2])));
    if (strcmp(command, "read") == 0 && argc == 3)
        return read_probe(argv[2]);
    if (strcmp(command, "write") == 0 && argc == 4)
        return write_probe(argv[2], argv[3]);
    if (strcmp(command, "hog") == 0 && argc == 3)
        return hog(atol(argv[2]));
    if (strcmp(command, "forks") == 0 && argc == 3)
        return forks(atol(argv[2]));
    if (strcmp(command, "mkdir") == 0 && argc == 3)
        return report("mkdir", syscall(SYS_mkdirat, AT_FDCWD, argv[2], 0755));
    return usage();
}
