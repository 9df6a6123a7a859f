/* `sealpost queue list|show|retry|drop`: the outbound queue for operators.
 * The CLI opens queue.sqlite beside a running server (WAL); a retry it
 * makes is seen by the server's runner at its next poll, within a second. */
#include "admin-private.h"

#include "queue/queue.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
state_name(enum queue_rcpt_state state)
{
	switch (state) {
	case QUEUE_RCPT_PENDING:
		return "pending";
	case QUEUE_RCPT_DELIVERED:
		return "delivered";
	case QUEUE_RCPT_FAILED:
		return "failed";
	}
	return "unknown";
}

static json_t *
time_json(time_t t)
{
	char buf[21];

	if (t == 0)
		return json_null();
	clock_format_iso8601(t, buf);
	return json_string(buf);
}

static const char *
time_text(time_t t, char buf[21])
{
	if (t == 0)
		return "-";
	clock_format_iso8601(t, buf);
	return buf;
}

static json_t *
message_json(const struct queue_message_info *m)
{
	json_t *obj = json_object(), *rcpts = json_array();

	json_object_set_new(obj, "id", json_string(m->id));
	json_object_set_new(obj, "mail_from", json_string(m->mail_from));
	json_object_set_new(obj, "domain", json_string(m->domain));
	json_object_set_new(obj, "accepted", time_json(m->accepted));
	json_object_set_new(obj, "final", time_json(m->final));
	json_object_set_new(obj, "redacted", time_json(m->redacted));
	json_object_set_new(obj, "size", json_integer((json_int_t)m->size));
	json_object_set_new(obj, "is_dsn", json_boolean(m->is_dsn));
	for (size_t i = 0; i < m->rcpt_count; i++) {
		const struct queue_rcpt_info *r = &m->rcpts[i];
		json_t *o = json_object();

		json_object_set_new(o, "address", json_string(r->address));
		json_object_set_new(o, "state",
				    json_string(state_name(r->state)));
		json_object_set_new(o, "attempts", json_integer(r->attempts));
		json_object_set_new(o, "next_attempt",
				    time_json(r->next_attempt));
		json_object_set_new(o, "last_code",
				    json_integer(r->last_code));
		json_object_set_new(o, "last_enhanced",
				    json_string(r->last_enhanced));
		json_object_set_new(o, "last_text", json_string(r->last_text));
		json_object_set_new(o, "last_action",
				    json_string(r->last_action));
		json_object_set_new(o, "last_category",
				    json_string(r->last_category));
		json_object_set_new(o, "delay_notified",
				    json_boolean(r->delay_notified));
		json_array_append_new(rcpts, o);
	}
	json_object_set_new(obj, "recipients", rcpts);
	return obj;
}

static struct queue *
queue_cli_open(struct admin_ctx *ctx)
{
	struct queue *q;
	const char *error;

	if (admin_load_conf(ctx) < 0)
		return NULL;
	if (queue_open(ctx->data_dir, &q, &error) < 0) {
		admin_fail("%s", error);
		return NULL;
	}
	return q;
}

/* The one ID argument; an exit code on bad usage, else -1. */
static int
one_id(struct admin_ctx *ctx, int argc, char **argv, const char **id_r)
{
	if (argc == 0)
		return admin_usage(ctx, "ID is missing");
	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-')
			return admin_usage(ctx, "unknown option '%s'", argv[i]);
	if (argc > 1)
		return admin_usage(ctx, "unexpected argument '%s'", argv[1]);
	*id_r = argv[0];
	return -1;
}

int
admin_cmd_queue_list(struct admin_ctx *ctx, int argc, char **argv)
{
	struct queue_message_info *list;
	struct queue *q;
	const char *error;
	size_t count;

	if (argc != 0)
		return admin_usage(ctx, "unexpected argument '%s'", argv[0]);
	if ((q = queue_cli_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	if (queue_list(q, &list, &count, &error) < 0) {
		queue_close(&q);
		return admin_fail("%s", error);
	}
	if (ctx->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < count; i++)
			json_array_append_new(arr, message_json(&list[i]));
		admin_json_print(arr);
	} else {
		if (count > 0)
			printf("%-16s  %-20s  %10s  %7s  %9s  %6s  %s\n",
			       "ID", "ACCEPTED", "SIZE", "PENDING",
			       "DELIVERED", "FAILED", "NEXT ATTEMPT");
		for (size_t i = 0; i < count; i++) {
			const struct queue_message_info *m = &list[i];
			unsigned n[3] = {0, 0, 0};
			time_t next = 0;
			char a[21], b[21];

			for (size_t j = 0; j < m->rcpt_count; j++) {
				const struct queue_rcpt_info *r = &m->rcpts[j];

				n[r->state <= QUEUE_RCPT_FAILED ? r->state
								: 0]++;
				if (r->state == QUEUE_RCPT_PENDING &&
				    (next == 0 || r->next_attempt < next))
					next = r->next_attempt;
			}
			printf("%-16s  %-20s  %10llu  %7u  %9u  %6u  %s%s%s\n",
			       m->id, time_text(m->accepted, a),
			       (unsigned long long)m->size, n[0], n[1], n[2],
			       time_text(next, b), m->is_dsn ? "  dsn" : "",
			       m->redacted != 0 ? "  redacted" : "");
		}
	}
	queue_message_list_free(&list, count);
	queue_close(&q);
	return ADMIN_EXIT_OK;
}

int
admin_cmd_queue_show(struct admin_ctx *ctx, int argc, char **argv)
{
	struct queue_message_info m;
	struct queue *q;
	const char *id, *error = NULL;
	char a[21], b[21], c[21];
	int rc = one_id(ctx, argc, argv, &id);

	if (rc >= 0)
		return rc;
	if ((q = queue_cli_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = queue_show(q, id, &m, &error);
	queue_close(&q);
	if (rc < 0)
		return admin_fail("%s", error);
	if (rc == 0)
		return admin_fail("no message %s in the queue", id);
	if (ctx->json) {
		admin_json_print(message_json(&m));
		queue_message_info_free(&m);
		return ADMIN_EXIT_OK;
	}
	printf("id:        %s%s\n", m.id, m.is_dsn ? " (delivery report)" : "");
	printf("from:      <%s>\n", m.mail_from);
	printf("domain:    %s\n", m.domain);
	printf("size:      %llu\n", (unsigned long long)m.size);
	printf("accepted:  %s\n", time_text(m.accepted, a));
	printf("final:     %s\n", time_text(m.final, b));
	printf("redacted:  %s\n", time_text(m.redacted, c));
	printf("\n%-32s  %-9s  %8s  %-20s  %-10s  %-12s  %s\n", "RECIPIENT",
	       "STATE", "ATTEMPTS", "NEXT ATTEMPT", "ACTION", "CATEGORY",
	       "LAST ANSWER");
	for (size_t i = 0; i < m.rcpt_count; i++) {
		const struct queue_rcpt_info *r = &m.rcpts[i];
		char answer[600];

		if (r->last_code != 0 || r->last_text[0] != '\0')
			snprintf(answer, sizeof(answer), "%d %s%s%s",
				 r->last_code, r->last_enhanced,
				 r->last_enhanced[0] != '\0' ? " " : "",
				 r->last_text);
		else
			snprintf(answer, sizeof(answer), "-");
		printf("%-32s  %-9s  %8u  %-20s  %-10s  %-12s  %s\n",
		       r->address, state_name(r->state), r->attempts,
		       time_text(r->next_attempt, a),
		       r->last_action[0] != '\0' ? r->last_action : "-",
		       r->last_category[0] != '\0' ? r->last_category : "-",
		       answer);
	}
	queue_message_info_free(&m);
	return ADMIN_EXIT_OK;
}

static int
id_command(struct admin_ctx *ctx, int argc, char **argv, bool drop)
{
	struct queue *q;
	const char *id, *error = NULL;
	int rc = one_id(ctx, argc, argv, &id);

	if (rc >= 0)
		return rc;
	if ((q = queue_cli_open(ctx)) == NULL)
		return ADMIN_EXIT_FAIL;
	rc = drop ? queue_drop(q, id, &error) : queue_retry(q, id, &error);
	queue_close(&q);
	if (rc < 0)
		return admin_fail("%s", error);
	if (rc == 0)
		return admin_fail("no message %s in the queue", id);
	printf("%s %s\n", id, drop ? "dropped" : "due now");
	return ADMIN_EXIT_OK;
}

int
admin_cmd_queue_retry(struct admin_ctx *ctx, int argc, char **argv)
{
	return id_command(ctx, argc, argv, false);
}

int
admin_cmd_queue_drop(struct admin_ctx *ctx, int argc, char **argv)
{
	return id_command(ctx, argc, argv, true);
}
