/* Telling a session what changed in its selected folder: EXPUNGE, EXISTS,
 * RECENT and FETCH FLAGS, at the points RFC 3501 7.4.1 allows. Runs on the
 * alias's queue (the session's command or an IDLE wake-up). */
#include "imap-private.h"

#include <stdlib.h>
#include <string.h>

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint32_t
imap_session_seq(const struct imap_session *s, uint32_t uid)
{
	size_t lo = 0, hi = s->uid_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->uids[mid] == uid)
			return (uint32_t)mid + 1;
		if (s->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

bool
imap_session_is_recent(const struct imap_session *s, uint32_t uid)
{
	return s->recent_count > 0 &&
	       bsearch(&uid, s->recent, s->recent_count, sizeof(uint32_t),
		       cmp_u32) != NULL;
}

static void
add_recent(struct imap_session *s, const uint32_t *uids, size_t count)
{
	if (count == 0)
		return;
	s->recent = xrealloc(s->recent,
			     (s->recent_count + count) * sizeof(uint32_t));
	memcpy(s->recent + s->recent_count, uids, count * sizeof(uint32_t));
	s->recent_count += count;
	qsort(s->recent, s->recent_count, sizeof(uint32_t), cmp_u32);
}

static void
remove_recent(struct imap_session *s, uint32_t uid)
{
	uint32_t *p;

	if (s->recent_count == 0)
		return;
	p = bsearch(&uid, s->recent, s->recent_count, sizeof(uint32_t),
		    cmp_u32);
	if (p == NULL)
		return;
	memmove(p, p + 1,
		(size_t)(s->recent + s->recent_count - (p + 1)) *
			sizeof(uint32_t));
	s->recent_count--;
}

void
imap_session_sync(struct imap_session *s, struct store_mailbox *mbox,
		  struct sp_buf *out, bool allow_expunge)
{
	uint32_t *now = NULL, *recent = NULL, max_old;
	size_t count = 0, recent_count = 0, old_count;
	struct store_change *changes = NULL;
	size_t change_count = 0;
	const char *error;

	if (store_folder_uids(mbox, s->folder_id, &now, &count, &error) !=
	    STORE_OK)
		return;
	if (allow_expunge) {
		size_t j = 0, kept = 0;

		for (size_t i = 0; i < s->uid_count; i++) {
			uint32_t uid = s->uids[i];

			while (j < count && now[j] < uid)
				j++;
			if (j < count && now[j] == uid) {
				s->uids[kept++] = uid;
			} else {
				sp_buf_printf(out, "* %zu EXPUNGE\r\n",
					      kept + 1);
				remove_recent(s, uid);
			}
		}
		s->uid_count = kept;
	}
	max_old = s->uid_count > 0 ? s->uids[s->uid_count - 1] : 0;
	old_count = s->uid_count;
	for (size_t j = 0; j < count; j++) {
		if (now[j] <= max_old)
			continue;
		if (s->uid_count == s->uid_cap) {
			s->uid_cap = s->uid_cap < 64 ? 64 : s->uid_cap * 2;
			s->uids = xrealloc(s->uids,
					   s->uid_cap * sizeof(uint32_t));
		}
		s->uids[s->uid_count++] = now[j];
	}
	free(now);
	if (s->uid_count > old_count) {
		if (store_folder_take_recent(mbox, s->folder_id, &recent,
					     &recent_count,
					     &error) == STORE_OK) {
			add_recent(s, recent, recent_count);
			free(recent);
		}
		sp_buf_printf(out, "* %zu EXISTS\r\n* %zu RECENT\r\n",
			      s->uid_count, s->recent_count);
	}

	/* Flag changes by others (and our own, which repeat harmlessly). */
	if (store_changes_since(mbox, s->folder_id, s->modseq, &changes,
				&change_count, &error) != STORE_OK)
		return;
	if (change_count > 0) {
		struct store_uid_range *ranges =
			xcalloc(change_count, sizeof(*ranges));
		size_t n = 0;
		struct store_uidset set;
		struct store_message *msgs = NULL;
		size_t msg_count = 0;

		for (size_t i = 0; i < change_count; i++) {
			if (changes[i].modseq > s->modseq)
				s->modseq = changes[i].modseq;
			if (changes[i].kind != STORE_CHANGE_FLAGS ||
			    changes[i].uid > max_old ||
			    imap_session_seq(s, changes[i].uid) == 0)
				continue;
			ranges[n].first = ranges[n].last = changes[i].uid;
			n++;
		}
		if (n > 0) {
			size_t m = 1;

			qsort(ranges, n, sizeof(*ranges), cmp_u32);
			for (size_t i = 1; i < n; i++) {
				if (ranges[i].first != ranges[m - 1].first)
					ranges[m++] = ranges[i];
			}
			n = m;
			set.ranges = ranges;
			set.count = n;
			if (store_fetch(mbox, s->folder_id, &set, 0, &msgs,
					&msg_count, &error) == STORE_OK) {
				for (size_t i = 0; i < msg_count; i++) {
					uint32_t seq = imap_session_seq(
						s, msgs[i].uid);

					if (seq == 0)
						continue;
					sp_buf_printf(
						out,
						"* %u FETCH (UID %u FLAGS ",
						seq, msgs[i].uid);
					imap_append_flags(
						out, msgs[i].flags,
						msgs[i].keywords,
						imap_session_is_recent(
							s, msgs[i].uid));
					if (s->condstore)
						sp_buf_printf(
							out,
							" MODSEQ (%llu)",
							(unsigned long long)
								msgs[i].modseq);
					sp_buf_append_str(out, ")\r\n");
				}
				store_messages_free(&msgs, msg_count);
			}
		}
		free(ranges);
	}
	free(changes);
}

bool
imap_session_in_sync(struct imap_session *s, struct store_mailbox *mbox)
{
	struct store_change *changes = NULL;
	size_t count = 0;
	const char *error;

	if (store_changes_since(mbox, s->folder_id, s->modseq, &changes,
				&count, &error) != STORE_OK)
		return false;
	free(changes);
	return count == 0;
}

void
imap_session_own_changes(struct imap_session *s, struct store_mailbox *mbox,
			 bool was_in_sync)
{
	/* Everything since the last sync is this command's own doing (the
	 * alias's queue runs one job at a time), already answered by it:
	 * do not report it again as FETCH FLAGS. */
	if (was_in_sync) {
		struct store_change *changes = NULL;
		size_t count = 0;
		const char *error;

		if (store_changes_since(mbox, s->folder_id, s->modseq,
					&changes, &count, &error) != STORE_OK)
			return;
		for (size_t i = 0; i < count; i++) {
			if (changes[i].kind == STORE_CHANGE_FLAGS &&
			    changes[i].modseq > s->modseq)
				s->modseq = changes[i].modseq;
			else if (changes[i].kind != STORE_CHANGE_FLAGS)
				break;
		}
		free(changes);
	}
}
