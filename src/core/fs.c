#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fs_mkdir_p(const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	int ret = 0;

	for (char *p = copy + 1; ret == 0; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			ret = -1;
		if (last)
			break;
		*p = '/';
	}
	free(copy);
	return ret;
}

int
fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

int
fs_fsync_parent(const char *path)
{
	char *copy = xstrdup(path);
	int ret = fs_fsync_dir(dirname(copy));

	free(copy);
	return ret;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	int fd, saved;

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	free(tmp);
	return fs_fsync_parent(path);
fail:
	free(tmp);
	return -1;
}

int
fs_read_file(const char *path, char **data_r, size_t *len_r)
{
	struct sp_buf buf;
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	sp_buf_init(&buf);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			close(fd);
			sp_buf_deinit(&buf);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		sp_buf_append(&buf, chunk, (size_t)n);
	}
	close(fd);
	*data_r = sp_buf_steal(&buf, len_r);
	return 0;
}

int
fs_secure_unlink(const char *path)
{
	static const char zeros[65536];
	struct stat st;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0) {
		off_t left = st.st_size;

		while (left > 0) {
			size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros)
							       : (size_t)left;
			if (write_all(fd, zeros, n) < 0)
				break;
			left -= (off_t)n;
		}
		(void)fsync(fd);
	}
	close(fd);
	if (unlink(path) < 0)
		return -1;
	return fs_fsync_parent(path);
}

bool
fs_exists(const char *path)
{
	return access(path, F_OK) == 0;
}
