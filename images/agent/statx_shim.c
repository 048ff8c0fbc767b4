/* statx(2) without AT_NO_AUTOMOUNT where the sandbox refuses that flag.
 *
 * gVisor as Debian 12 ships it (runsc 2022) answers EINVAL to a statx call that passes
 * AT_NO_AUTOMOUNT, and coreutils' ls and stat pass it for every file: `ls -l` and `stat` failed
 * in every bottle with "Invalid argument". A sandbox has no automount points, so the flag means
 * nothing there: on EINVAL the call is made again without it. Loaded into every dynamically
 * linked program through /etc/ld.so.preload; where the first call succeeds (runc, a newer
 * gVisor, a micro-VM) nothing differs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    long r = syscall(SYS_statx, dirfd, path, flags, mask, buf);
    if (r == -1 && errno == EINVAL && (flags & AT_NO_AUTOMOUNT))
        r = syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
    return (int)r;
}
