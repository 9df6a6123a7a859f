#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
core_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("sealpost: panic: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void *
check_alloc(void *p, size_t size)
{
	if (p == NULL && size != 0)
		core_panic("out of memory allocating %zu bytes", size);
	return p;
}

void *
xmalloc(size_t size)
{
	return check_alloc(malloc(size == 0 ? 1 : size), size);
}

void *
xcalloc(size_t n, size_t size)
{
	if (n != 0 && size > SIZE_MAX / n)
		core_panic("allocation overflow: %zu * %zu", n, size);
	return check_alloc(calloc(n == 0 ? 1 : n, size == 0 ? 1 : size),
			   n * size);
}

void *
xrealloc(void *ptr, size_t size)
{
	return check_alloc(realloc(ptr, size == 0 ? 1 : size), size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *copy = xmalloc(len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		core_panic("out of memory formatting a string");
	va_end(ap);
	return s;
}

void
sp_buf_init(struct sp_buf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
}

void
sp_buf_deinit(struct sp_buf *buf)
{
	free(buf->data);
	sp_buf_init(buf);
}

void
sp_buf_reset(struct sp_buf *buf)
{
	buf->len = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

static void
sp_buf_reserve(struct sp_buf *buf, size_t extra)
{
	size_t need;

	if (extra > SIZE_MAX - buf->len - 1)
		core_panic("buffer overflow");
	need = buf->len + extra + 1;
	if (need <= buf->cap)
		return;
	size_t cap = buf->cap == 0 ? 64 : buf->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	buf->data = xrealloc(buf->data, cap);
	buf->cap = cap;
}

void
sp_buf_append(struct sp_buf *buf, const void *data, size_t len)
{
	sp_buf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
sp_buf_append_str(struct sp_buf *buf, const char *s)
{
	sp_buf_append(buf, s, strlen(s));
}

void
sp_buf_printf(struct sp_buf *buf, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		core_panic("bad format string");
	sp_buf_reserve(buf, (size_t)n);
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	buf->len += (size_t)n;
}

char *
sp_buf_steal(struct sp_buf *buf, size_t *len_r)
{
	char *data;

	sp_buf_reserve(buf, 0);
	buf->data[buf->len] = '\0';
	data = buf->data;
	if (len_r != NULL)
		*len_r = buf->len;
	sp_buf_init(buf);
	return data;
}

bool
str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
str_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

size_t
str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}
