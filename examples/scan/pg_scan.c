/* The reference for PostgreSQL's own cost in `make bench`: reads a table the way repliqate does
 * (primary-key batches of LIMIT rows, `WHERE key > $1 ORDER BY key LIMIT $2`, one prepared
 * statement) with libpq, the C client, in its default text format, and touches every value.
 * No encoding, no hashing, no Kafka: what any client pays the server and the wire.
 *
 * usage: pg_scan CONNINFO TABLE KEY LIMIT
 * prints: SCAN <rows> <bytes of values> <seconds>
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan.h"

int main(int argc, char **argv) {
	if (argc != 5) {
		fprintf(stderr, "usage: pg_scan CONNINFO TABLE KEY LIMIT\n");
		return 2;
	}
	PGconn *conn = PQconnectdb(argv[1]);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pg_scan: connecting: %s", PQerrorMessage(conn));
		return 1;
	}
	char table[512], key[512], sql[2048];
	quote(table, sizeof table, argv[2], '"');
	quote(key, sizeof key, argv[3], '"');
	snprintf(sql, sizeof sql,
		 "SELECT * FROM %s WHERE %s > $1::int8 ORDER BY %s LIMIT $2::int8", table, key, key);
	PGresult *res = PQprepare(conn, "batch", sql, 2, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pg_scan: preparing: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);

	long long limit = atoll(argv[4]), rows = 0, bytes = 0;
	char after[32] = "-9223372036854775808", lim[32];
	snprintf(lim, sizeof lim, "%lld", limit);
	double started = now();
	for (;;) {
		const char *params[2] = {after, lim};
		res = PQexecPrepared(conn, "batch", 2, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "pg_scan: reading: %s", PQerrorMessage(conn));
			return 1;
		}
		int n = PQntuples(res), width = PQnfields(res), key_col = PQfnumber(res, key);
		for (int r = 0; r < n; r++)
			for (int c = 0; c < width; c++)
				bytes += PQgetlength(res, r, c);
		rows += n;
		if (n > 0)
			snprintf(after, sizeof after, "%s", PQgetvalue(res, n - 1, key_col));
		PQclear(res);
		if (n < limit)
			break;
	}
	printf("SCAN %lld %lld %.6f\n", rows, bytes, now() - started);
	PQfinish(conn);
	return 0;
}
