/* etcd_watch: a watch of a key or a prefix, its events in revision order.
 *
 * A watch has a connection of its own (it streams its reply for as long
 * as it lives), owned by the coroutine that opened it: only that coroutine
 * may call etcd_watch_next() and etcd_watch_close(). It uses its client's
 * endpoints and counts in its client's statistics. */
#ifndef TURNSTILE_ETCD_WATCH_H
#define TURNSTILE_ETCD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd_client.h"
#include "etcd_conn.h"
#include "etcd_decode.h"

/* Fields are private but `revision`. */
struct etcd_watch {
    int64_t revision; /* header revision when created: every later change is reported */
    struct etcd_client *client;
    struct etcd_conn conn;
    struct etcd_json json;     /* the message being handed out, read in place in conn's body */
    struct etcd_jv next_event; /* its next event, or none */
    size_t taken;              /* its length: dropped from the body before the next is read */
    struct etcd_mem *mem;      /* the last event's bytes */
    int failed;                /* the error that ended the stream, 0 while it runs */
};

/* Watches key (with prefix: every key that starts with it) from now on,
 * through /v3/watch with no start revision: etcd then reports the watch
 * created at once (a start revision at or below the current one puts the
 * watch in etcd's "unsynced" group, flushed only every 100 ms). Returns 0
 * once etcd says it is created: w->revision is the revision then, and
 * every change after it will come. A caller that must not miss a change
 * reads the state after this (etcd_range) and applies events with a
 * mod_revision above what it read. On failure (what etcd.h lists, or
 * -EPIPE: etcd ended the stream or cancelled the watch before it was
 * created) w holds nothing to close. A watch takes two of its coroutine's
 * CORO_MAX_DEFER cleanups: -ENOSPC when they are not there. */
int etcd_watch_open(struct etcd_client *c, struct etcd_watch *w, const char *key, size_t key_len,
                    bool prefix, int64_t deadline_us);

/* The next event, in revision order. ev points into w until the next call
 * or etcd_watch_close(). Returns 0, -ETIMEDOUT (nothing came: the watch
 * stays usable), -ECANCELED (loop_cancel: stays usable), or, when the
 * watch ended (close it then): -ECONNRESET (connection lost), -EPIPE (etcd
 * ended the stream or cancelled the watch), -EACCES (etcd's auth: the
 * user's role lacks the keys), -ERANGE (compacted), -EIO or -EMSGSIZE
 * (not what etcd sends), or an error message in the stream: etcd's
 * refusal, as etcd.h maps its gRPC code. */
int etcd_watch_next(struct etcd_watch *w, struct etcd_event *ev, int64_t deadline_us);

/* True if the watch's endpoint was abandoned by the process (etcd_conn.h's
 * health) and another is healthy: its events may have stopped, and it
 * should be reopened there. */
bool etcd_watch_abandoned(const struct etcd_watch *w);

/* Ends the watch: etcd cancels it when its connection closes. */
void etcd_watch_close(struct etcd_watch *w);

#endif
