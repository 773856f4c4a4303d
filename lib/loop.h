/* loop: runs coroutines on a libevent event_base.
 *
 * A coroutine parks (sleep, fd wait, loop_park) and the loop resumes it when
 * its event comes. How a park ends:
 *   - its event (timer of a sleep, fd readiness, loop_wake): the result given;
 *   - its deadline passes: -ETIMEDOUT;  loop_cancel(): -ECANCELED.
 * Deadlines and cancellations are delivered after every other wake-up of the
 * same loop turn, and a loop_wake() that comes before the coroutine has run
 * overrides them. So a lock grant and a timeout in one turn resolve to the
 * grant, whatever order libevent ran them in. */
#ifndef TURNSTILE_LOOP_H
#define TURNSTILE_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* struct event is embedded in struct loop_io (opening one allocates
 * nothing); no other part of libevent is visible outside loop.c. */
#include <event2/event_struct.h>

#include "coro.h"
#include "list.h"

#define LOOP_FOREVER INT64_MAX /* a deadline that never passes */

/* What a loop_io waits for (libevent's EV_READ and EV_WRITE; loop.c
 * checks that they agree). */
#define LOOP_READ  0x02
#define LOOP_WRITE 0x04

struct loop_watch;

struct loop {
    struct event_base *base; /* loop.c's alone */
    struct coro_pool pool;
    struct event *ready_ev;       /* runs tasks woken by loop_wake() */
    struct event *late_ev;        /* delivers timeouts and cancellations */
    struct list_node ready, late; /* their queues of tasks */
    uint64_t spawned;
    int64_t timer_slack_us; /* how early sleeps set their timer; see loop_sleep_us */
    int poll_rate;          /* how often polling after work would catch the next; loop.c's */
    /* What other threads hand this loop (wakes of its tasks, posts): under
     * inbox_mu, announced on inbox_fd, an eventfd the loop watches. */
    pthread_mutex_t inbox_mu;
    struct list_node inbox; /* tasks woken from other threads */
    struct list_node posts; /* struct loop_post */
    int inbox_fd;           /* -1 until loop_open_inbox() */
    struct loop_watch *inbox_watch;
};

/* stack_size 0: CORO_DEFAULT_STACK. Returns 0 or a negative errno. */
int loop_init(struct loop *loop, size_t stack_size, unsigned max_free_stacks);
void loop_fini(struct loop *loop);

/* Runs until loop_break() or nothing is left to wait for. */
int loop_run(struct loop *loop);
/* One turn that does not block: runs what is ready now (a test or a fuzz
 * driver that feeds the loop itself). */
void loop_run_once(struct loop *loop);
void loop_break(struct loop *loop);

/* Monotonic clock in microseconds: the unit of every deadline here. */
int64_t loop_now_us(void);

/* loop_now_us() as read when the loop last resumed a coroutine (or a
 * sleep ended): free to read, behind the true time by whatever the running
 * coroutine has done since. For statistics and coarse deadlines. */
int64_t loop_clock_us(void);

/* ms milliseconds in the clock's unit, rounded to the nearest microsecond:
 * settings may be fractional (--delay-ms 0.25). Exact for every whole ms
 * up to 2^43, far above the day that cfg allows any timeout. */
static inline int64_t loop_ms_to_us(double ms)
{
    return (int64_t)(ms * 1000.0 + 0.5);
}

/* Starts fn(arg) in a new coroutine at once; it runs until it first parks,
 * then loop_spawn returns. -ENOMEM when no stack can be had. *out (may be
 * NULL) names the coroutine while it lives, for loop_cancel(). */
int loop_spawn(struct loop *loop, coro_fn fn, void *arg, coro_t **out);

/* Gives back the coroutine stacks this loop keeps idle for reuse: for when
 * memory runs short (an allocation failed). */
void loop_trim(struct loop *loop);

/* The loop of the running coroutine's task. */
struct loop *loop_current(void);

/* Parks the running coroutine for us microseconds (0 returns at once),
 * ending within microseconds of the deadline: the timer is set early by the
 * timer lateness the loop has seen, and the remainder is spun. Returns 0,
 * or -ECANCELED if cancelled first. */
int loop_sleep_us(int64_t us);

/* Lets every coroutine that is ready run first, then continues. */
void loop_yield(void);

/* A descriptor watched for as long as its owner coroutine has it open,
 * edge-triggered: waiting costs no epoll_ctl, only the open and the close
 * do. `ready` remembers the edges seen since the owner last cleared them,
 * so an edge that comes while the owner is busy is not lost. */
struct loop_io {
    struct loop_task *task; /* the owner: the coroutine that waits on it */
    int fd;
    short ready;   /* LOOP_READ / LOOP_WRITE edges not yet cleared */
    short waiting; /* what the owner is parked on, 0 if none */
    bool write_watched;
    bool peer_closed; /* EV_CLOSED seen: reads are never "drained" again */
    bool timer_set;
    int64_t deadline_us;          /* of the current wait */
    int64_t timer_at_us;          /* when the timer is set to fire */
    struct event rev, wev, timer; /* in place: opening one allocates nothing */
    void (*on_hangup)(void *arg); /* peer hung up while the owner waited elsewhere */
    void *arg;
};

/* From the owner coroutine. on_hangup (may be NULL) runs on the loop's
 * stack when input arrives or the peer closes or resets while the owner is
 * parked on something else (a lock, a sleep): it should look (a MSG_PEEK
 * recv) and may loop_cancel() the owner. The io is closed automatically if
 * the owner is destroyed. */
int loop_io_open(struct loop_io *io, int fd, void (*on_hangup)(void *arg), void *arg);
/* Stops watching (does not close fd). */
void loop_io_close(struct loop_io *io);
/* Parks until fd is ready for `what` (LOOP_READ or LOOP_WRITE), returning at
 * once if an edge came since loop_io_clear(). Returns 0, -ETIMEDOUT or
 * -ECANCELED. Deadlines here are for idle and slow peers: the timer is
 * moved only when a deadline comes earlier than the one it is set for, and
 * a later one is honoured by re-arming when the timer fires, so a busy
 * connection touches no timer per request. When the timer is set or
 * moved, the time left is measured on the true clock, so a deadline is
 * met within the timer's own precision however long ago the loop last
 * resumed a coroutine. */
int loop_io_wait(struct loop_io *io, short what, int64_t deadline_us);
/* The owner drained the descriptor (EAGAIN, or a short read): forget the
 * edge so the next wait parks until a new one. */
void loop_io_clear(struct loop_io *io, short what);

/* Parks until loop_wake(), the deadline or loop_cancel(). Returns the
 * result given to loop_wake(), -ETIMEDOUT or -ECANCELED. */
int loop_park(int64_t deadline_us);

/* Makes co's park return `result` on a coming loop turn. Returns 0, or
 * -EALREADY if co is not parked or already woken by an event. From co's
 * own loop only; from another thread, see loop_wake_park(). */
int loop_wake(coro_t *co, int result);

/* ---- across threads ----
 *
 * Each loop runs on its own thread. A coroutine of one loop may hand
 * something to a coroutine of another (the lock's hand-off): it wakes a
 * particular park of it, named by a ticket the waiter took before it
 * parked, so a wake that arrives late can never end a later park. */

/* Lets other threads wake this loop's coroutines and post to it. The
 * loop then always has something to wait for: stop it with loop_break().
 * Returns 0 or a negative errno. */
int loop_open_inbox(struct loop *loop);

/* From a coroutine: the ticket of its next park. */
uint64_t loop_park_ticket(void);

/* From any thread: ends park `ticket` of co with result, as loop_wake()
 * does, on co's own loop (at once if that is the caller's). A wake for a
 * park that has already ended some other way is dropped. */
void loop_wake_park(coro_t *co, uint64_t ticket, int result);

/* From co's own loop, after its park ended: drops a wake from another
 * thread that is still on its way (the waiter saw what it was handed
 * before the wake came). */
void loop_unwake(coro_t *co);

/* A function to run on a loop's thread, posted from any thread. The
 * caller owns the storage, zeroed before its first post (a designated
 * initializer does it). Posting it again while it still waits is a no-op:
 * fn runs once. After fn has run it may be posted again, to the same loop. */
struct loop_post {
    struct list_node link;
    void (*fn)(void *arg);
    void *arg;
};
void loop_post(struct loop *loop, struct loop_post *p);

/* Ends co's park with -ECANCELED (unless an event woke it first). Returns
 * 0 or -EALREADY like loop_wake(). */
int loop_cancel(coro_t *co);

/* True while co is parked and nothing has woken it yet. */
bool loop_parked(const coro_t *co);

/* ---- callbacks, for the daemon's own events ----
 *
 * Coroutines serve requests; a few things around them are plain callbacks
 * run on the loop's stack: the listening socket, signals, housekeeping
 * timers, a descriptor another thread pokes. Each picks its priority:
 *   LOOP_PRIO_IO    with socket I/O and wake-ups: what must not wait;
 *   LOOP_PRIO_LATE  after everything else of a loop turn, with the
 *                   delivery of timeouts: what can (housekeeping), or
 *                   should (accepting more work while there is work). */
enum loop_prio { LOOP_PRIO_IO, LOOP_PRIO_LATE };

struct loop_watch;
typedef void (*loop_watch_fn)(void *arg);

/* A callback for fd readable (level-triggered), for signal sig, or for a
 * timer. NULL when out of memory (or, for a signal, without a descriptor).
 * Nothing is watched before loop_watch_start().
 *
 * A signal is taken from a signalfd, never by a handler: the watch blocks
 * sig in the calling thread, and loop_watch_free() unblocks it there (what
 * came meanwhile and was not read is dropped). Every other thread must
 * block it too (threads started later inherit the mask): a thread that
 * does not would take the signal's default action. Signals sent while
 * the watch is stopped wait for its next start; two of a kind sent before
 * the loop reads the first are one (the kernel's pending set). */
struct loop_watch *loop_watch_fd(struct loop *loop, int fd, enum loop_prio prio, loop_watch_fn fn,
                                 void *arg);
struct loop_watch *loop_watch_signal(struct loop *loop, int sig, enum loop_prio prio,
                                     loop_watch_fn fn, void *arg);
/* periodic: fires every `after_us` of loop_watch_start() until stopped. */
struct loop_watch *loop_watch_timer(struct loop *loop, bool periodic, enum loop_prio prio,
                                    loop_watch_fn fn, void *arg);
/* Starts (or restarts) watching. after_us: a timer's delay; ignored for
 * descriptors and signals. Returns 0 or -EINVAL. */
int loop_watch_start(struct loop_watch *w, int64_t after_us);
void loop_watch_stop(struct loop_watch *w);
bool loop_watch_active(const struct loop_watch *w);
/* Stops and frees w; NULL is fine. */
void loop_watch_free(struct loop_watch *w);

#endif
