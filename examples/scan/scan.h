/* What both scan references share (pg_scan.c, mariadb_scan.c): a monotonic clock, and an identifier
 * quoted for SQL with the server's quote character (doubled inside the name). */
#include <stddef.h>
#include <time.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void quote(char *out, size_t size, const char *name, char q) {
	size_t n = 0;
	out[n++] = q;
	for (const char *p = name; *p && n + 3 < size; p++) {
		if (*p == q)
			out[n++] = q;
		out[n++] = *p;
	}
	out[n++] = q;
	out[n] = 0;
}
