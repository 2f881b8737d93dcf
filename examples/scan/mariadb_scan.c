/* The reference for MariaDB's own cost in `make bench`: reads a table the way repliqate does
 * (primary-key batches of LIMIT rows, `WHERE key > ? ORDER BY key LIMIT ?`) with the MariaDB
 * C client library, streaming each batch (mysql_use_result), and touches every value. No
 * encoding, no hashing, no Kafka: what any client pays the server and the wire.
 *
 * The key bound is an integer this program printed itself, so it is written into the query
 * text (the text protocol, the client library's ordinary fast path).
 *
 * usage: mariadb_scan HOST PORT USER PASSWORD DATABASE TABLE KEY LIMIT
 * prints: SCAN <rows> <bytes of values> <seconds>
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

int main(int argc, char **argv) {
	if (argc != 9) {
		fprintf(stderr, "usage: mariadb_scan HOST PORT USER PASSWORD DATABASE TABLE KEY LIMIT\n");
		return 2;
	}
	MYSQL *conn = mysql_init(NULL);
	if (!mysql_real_connect(conn, argv[1], argv[3], argv[4], argv[5], atoi(argv[2]), NULL, 0)) {
		fprintf(stderr, "mariadb_scan: connecting: %s\n", mysql_error(conn));
		return 1;
	}
	char table[512], key[512], sql[2048];
	quote(table, sizeof table, argv[6], '`');
	quote(key, sizeof key, argv[7], '`');
	long long limit = atoll(argv[8]), rows = 0, bytes = 0;
	char after[32] = "-9223372036854775808";
	double started = now();
	for (;;) {
		int len = snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE %s > %s ORDER BY %s LIMIT %lld",
				   table, key, after, key, limit);
		if (mysql_real_query(conn, sql, len)) {
			fprintf(stderr, "mariadb_scan: reading: %s\n", mysql_error(conn));
			return 1;
		}
		MYSQL_RES *res = mysql_use_result(conn);
		if (!res) {
			fprintf(stderr, "mariadb_scan: reading: %s\n", mysql_error(conn));
			return 1;
		}
		unsigned width = mysql_num_fields(res);
		long long n = 0;
		MYSQL_ROW row;
		char last[32] = "";
		while ((row = mysql_fetch_row(res))) {
			unsigned long *lengths = mysql_fetch_lengths(res);
			for (unsigned c = 0; c < width; c++)
				bytes += lengths[c];
			/* The key is the first column of the bench's table. */
			snprintf(last, sizeof last, "%s", row[0]);
			n++;
		}
		if (mysql_errno(conn)) {
			fprintf(stderr, "mariadb_scan: reading: %s\n", mysql_error(conn));
			return 1;
		}
		mysql_free_result(res);
		rows += n;
		if (n > 0)
			snprintf(after, sizeof after, "%s", last);
		if (n < limit)
			break;
	}
	printf("SCAN %lld %lld %.6f\n", rows, bytes, now() - started);
	mysql_close(conn);
	return 0;
}
