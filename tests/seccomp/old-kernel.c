/*
 * old-kernel: runs a command as if on Linux 2.6.32 (CentOS 6, the base of STARFACE 6.x), as far
 * as system calls go: every x86_64 system call that kernel did not have fails with ENOSYS, just
 * as it would there, and the program under test has to cope with it.
 *
 *   old-kernel [--last NR] [--verbose] -- COMMAND [ARG...]
 *
 * x86_64 numbers its system calls in the order they were added, so "newer than 2.6.32" is
 * "above 298" (perf_event_open, 2.6.31; recvmmsg, 299, came with 2.6.33). --last NR moves the
 * line, e.g. --last 290 for 2.6.26 (no epoll_create1). The x32 ABI and 32-bit calls (int 0x80)
 * fail with ENOSYS as well. What a filter cannot show: flags that an old system call did not
 * know yet (it would answer EINVAL there and succeeds here), and behaviour (e.g. how
 * /dev/random blocks) - tests/platforms.sh covers the latter separately.
 *
 * Built with plain gcc (no libseccomp): the filter is six BPF instructions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#ifndef __x86_64__
#error "old-kernel models the x86_64 system call table only"
#endif

/* The last system call of Linux 2.6.32 on x86_64. */
#define LAST_2_6_32 298
/* x32 system calls carry this bit in the number. */
#define X32_BIT 0x40000000u

static void usage(void)
{
    fprintf(stderr, "usage: old-kernel [--last NR] [--verbose] -- COMMAND [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned long last = LAST_2_6_32;
    int verbose = 0;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--last") == 0 && i + 1 < argc) {
            char *end;
            last = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || last >= X32_BIT)
                usage();
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else {
            usage();
        }
    }
    if (i >= argc)
        usage();

    struct sock_filter filter[] = {
        /* Another architecture (a 32-bit call): ENOSYS, as for anything we do not model. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        /* x32 numbers are above every x86_64 number, so one comparison covers both. */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (unsigned int)last, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
        .filter = filter,
    };
    /* Without this an unprivileged process may not install a filter; it also keeps a setuid
     * program under test from gaining rights the filter was not written for. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        perror("old-kernel: prctl(PR_SET_NO_NEW_PRIVS)");
        return 1;
    }
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("old-kernel: prctl(PR_SET_SECCOMP)");
        return 1;
    }
    if (verbose)
        fprintf(stderr, "old-kernel: system calls above %lu fail with ENOSYS\n", last);
    execvp(argv[i], &argv[i]);
    fprintf(stderr, "old-kernel: cannot run %s: %s\n", argv[i], strerror(errno));
    return 127;
}
