/*
 * skiff's container init (mounted at /sbin/docker-init with `--init`).
 *
 * Runs as PID 1 of the container: starts the command given after "--", forwards every
 * signal it receives to it, reaps every zombie re-parented to it, and exits with the
 * command's status (128 + signal number when the command was killed by a signal).
 * Built static (-static -Os) so it runs in any image, including busybox and scratch ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void usage(void) {
    fprintf(stderr, "usage: docker-init [--] COMMAND [ARG...]\n");
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) {
        first = 2;
    }
    if (first >= argc) {
        usage();
        return 1;
    }

    /* When not PID 1 (e.g. pid namespace shared), still adopt orphans. */
    if (getpid() != 1) {
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }

    /* Block every signal: the parent takes them synchronously with sigwaitinfo. */
    sigset_t all, original;
    sigfillset(&all);
    if (sigprocmask(SIG_SETMASK, &all, &original) != 0) {
        perror("docker-init: sigprocmask");
        return 1;
    }

    pid_t child = fork();
    if (child < 0) {
        perror("docker-init: fork");
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &original, NULL);
        execvp(argv[first], &argv[first]);
        int err = errno;
        fprintf(stderr, "docker-init: exec %s: %s\n", argv[first], strerror(err));
        _exit(err == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&all, &info);
        if (sig < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("docker-init: sigwaitinfo");
            return 1;
        }
        if (sig != SIGCHLD) {
            /* forward; the child may already be gone, which is fine */
            kill(child, sig);
            continue;
        }
        /* reap everything that exited; stop when the command itself has */
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0) {
                break;
            }
            if (pid == child) {
                if (WIFEXITED(status)) {
                    return WEXITSTATUS(status);
                }
                if (WIFSIGNALED(status)) {
                    return 128 + WTERMSIG(status);
                }
                return 1;
            }
        }
    }
}
