/* watcher: each loop's copy of the cluster's queue follows etcd.
 *
 * One prefix watch per loop (no start revision: a start revision at or
 * below the current one lands in etcd's "unsynced" group, flushed every
 * 100 ms). Once it is created, the queue and the counter are read at one
 * revision, and only events above it are applied: the mirror misses
 * nothing. After every event the head of the queue is granted if it is
 * one of ours (ticket_grant_head). A watch that breaks is reopened and the
 * queue read anew; one that stays silent while requests wait is checked
 * against a fresh read every second (a stalled member keeps its socket
 * open). */
#ifndef TURNSTILE_CLUSTER_WATCHER_H
#define TURNSTILE_CLUSTER_WATCHER_H

/* The watcher's coroutine (arg: its loop's cluster_loop): until the
 * instance stops. */
void watcher_main(void *arg);

#endif
