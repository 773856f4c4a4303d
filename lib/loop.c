/* loop: coroutines on libevent. See loop.h for the contract.
 *
 * Each coroutine started by loop_spawn() has a task on its own stack: the
 * events it may park on (one timer, one fd event, both assigned in place so
 * parking never allocates) and its place in the loop's run queues.
 *
 * Two run queues, on two libevent priorities. `ready` (priority 0, like
 * every other event of ours) resumes tasks that loop_wake() woke from inside
 * another coroutine: resuming them there would nest stacks. `late`
 * (priority 1) delivers deadlines and cancellations; libevent runs a lower
 * priority only once the higher one is empty, i.e. after everything else of
 * the turn, so a wake-up of the same turn can still override them. Timer and
 * fd events that end a park resume the task directly from their callback:
 * no detour through a queue. */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

enum { PRIO_NORMAL = 0, PRIO_LATE = 1, PRIO_COUNT = 2 };

enum task_state {
    TASK_RUNNING, /* on the CPU, or suspended inside a nested resume */
    TASK_PARKED,  /* waiting for its event */
    TASK_READY,   /* woken, in the ready queue */
    TASK_LATE,    /* timed out or cancelled, in the late queue */
};

struct loop_task {
    struct loop *loop;
    coro_t *co;
    enum task_state state;
    int result;       /* what the park returns */
    int timer_result; /* 0 for a sleep, -ETIMEDOUT for a deadline */
    bool timer_armed;
    struct event timer;
    struct list_node link; /* in the ready or late queue */
    uint64_t parks;        /* parks so far: the current one's ticket */
    /* A wake from another thread, in the loop's inbox (under inbox_mu). */
    struct list_node inbox_link;
    uint64_t wake_ticket;
    int wake_result;
};

/* The loop this thread is running (loop_run), if any. */
static _Thread_local struct loop *running;

/* loop_now_us() as of the last resume by the loop; see loop_clock_us(). */
static _Thread_local int64_t clock_cache;
static _Thread_local uint64_t resumes; /* coroutines resumed by the loop */
/* When the loop first resumed a coroutine in the current turn, 0 if it has
 * not yet: the end of a gap between work (see POLL_AFTER_WORK_US). */
static _Thread_local int64_t first_resume_us;

int64_t loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t loop_clock_us(void)
{
    return clock_cache;
}

/* ---- run queues ---- */

_Static_assert(LOOP_READ == EV_READ && LOOP_WRITE == EV_WRITE, "loop.h's event bits");

static struct loop_task *task_of(struct list_node *n)
{
    return list_entry(n, struct loop_task, link);
}

static void disarm(struct loop_task *t)
{
    if (t->timer_armed)
        event_del(&t->timer);
    t->timer_armed = false;
}

/* Leaves whatever queue t is in, so it can be resumed or freed. */
static void unqueue(struct loop_task *t)
{
    if (list_linked(&t->link))
        list_remove(&t->link);
}

static void resume(struct loop_task *t, int result)
{
    clock_cache = loop_now_us();
    if (!first_resume_us)
        first_resume_us = clock_cache;
    resumes++;
    disarm(t);
    t->result = result;
    t->state = TASK_RUNNING;
    coro_resume(t->co); /* t is gone if the coroutine finished */
}

static void make_ready(struct loop_task *t, int result)
{
    disarm(t);
    unqueue(t);
    t->result = result;
    t->state = TASK_READY;
    list_push_back(&t->loop->ready, &t->link);
    event_active(t->loop->ready_ev, 0, 0);
}

static void make_late(struct loop_task *t, int result)
{
    disarm(t);
    t->result = result;
    t->state = TASK_LATE;
    list_push_back(&t->loop->late, &t->link);
    event_active(t->loop->late_ev, 0, 0);
}

/* Runs the tasks queued when the callback started; tasks they wake wait for
 * the next round, so two coroutines waking each other cannot starve I/O. */
static void run_queue(struct list_node *queue, struct event *ev)
{
    struct list_node *last = list_last(queue);
    struct list_node *n;
    while ((n = list_first(queue))) {
        struct loop_task *t = task_of(n);
        list_remove(n);
        resume(t, t->result);
        if (n == last)
            break;
    }
    if (!list_empty(queue))
        event_active(ev, 0, 0);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct loop *loop = arg;
    (void)fd, (void)what;
    run_queue(&loop->ready, loop->ready_ev);
}

static void on_late(evutil_socket_t fd, short what, void *arg)
{
    struct loop *loop = arg;
    (void)fd, (void)what;
    run_queue(&loop->late, loop->late_ev);
}

/* ---- event callbacks that end a park ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct loop_task *t = arg;
    (void)fd, (void)what;
    t->timer_armed = false;
    if (t->state != TASK_PARKED)
        return;
    if (t->timer_result == 0)
        resume(t, 0); /* a sleep ran its course */
    else
        make_late(t, t->timer_result);
}

/* An event for t came: resume it at once when we are on the loop's own
 * stack, else through the ready queue. It beats a timeout or cancel that is
 * not delivered yet. Returns -EALREADY if t is not waiting. */
static int deliver(struct loop_task *t, int result)
{
    if (t->state == TASK_PARKED && !coro_current())
        resume(t, result);
    else if (t->state == TASK_PARKED || t->state == TASK_LATE)
        make_ready(t, result);
    else
        return -EALREADY;
    return 0;
}

/* ---- loop ---- */

int loop_init(struct loop *loop, size_t stack_size, unsigned max_free_stacks)
{
    *loop = (struct loop){0};
    list_init(&loop->ready);
    list_init(&loop->late);
    list_init(&loop->inbox);
    list_init(&loop->posts);
    loop->inbox_fd = -1;
    pthread_mutex_init(&loop->inbox_mu, NULL);
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return -ENOMEM;
    /* Precise timers (timerfd on Linux): a 1 ms sleep is not rounded up. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    loop->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!loop->base || event_base_priority_init(loop->base, PRIO_COUNT) != 0)
        goto fail;
    loop->ready_ev = event_new(loop->base, -1, 0, on_ready, loop);
    loop->late_ev = event_new(loop->base, -1, 0, on_late, loop);
    if (!loop->ready_ev || !loop->late_ev)
        goto fail;
    event_priority_set(loop->ready_ev, PRIO_NORMAL);
    event_priority_set(loop->late_ev, PRIO_LATE);
    coro_pool_init(&loop->pool, stack_size, max_free_stacks);
    return 0;
fail:
    loop_fini(loop);
    return -ENOMEM;
}

void loop_fini(struct loop *loop)
{
    if (!loop->base)
        return; /* never initialised, or finished already */
    loop_watch_free(loop->inbox_watch);
    if (loop->inbox_fd >= 0)
        close(loop->inbox_fd);
    pthread_mutex_destroy(&loop->inbox_mu);
    if (loop->ready_ev)
        event_free(loop->ready_ev);
    if (loop->late_ev)
        event_free(loop->late_ev);
    event_base_free(loop->base);
    coro_pool_fini(&loop->pool);
    *loop = (struct loop){0};
}

/* How long the loop keeps polling after it last resumed a coroutine,
 * before it sleeps in epoll_wait. Under load the next request is usually
 * microseconds away: catching it without a sleep and a wake-up saves more
 * than the polling costs, and an idle server sleeps as before.
 *
 * But only while polling pays. Whether it does depends on what the work
 * waits for next, which the loop cannot see: a client on loopback answers
 * in microseconds, an etcd reply or a watch event comes a millisecond
 * later, and spinning 50 us for each of those (several per cluster
 * request) costs more CPU than the requests themselves. So the loop
 * watches what polling would have caught: after every turn that did work,
 * whether the next one came within the window (the "gap", from the end of
 * the last work to the first resume; measured whether the loop polled or
 * slept), and keeps a running hit rate over about the last eight. It
 * polls while at least half came in time. A miss spins the whole window,
 * a hit saves a sleep and a wake-up: a few microseconds of CPU, and the
 * wake-up's latency, which is what W1's throughput and W2's p99 on a busy
 * VM want. A single-node server under load hits most of the time (W2:
 * about 4 in 5 while the machine was busy) and polls as before; a cluster
 * instance, whose next event is mostly etcd's, hits about 1 in 4 and
 * sleeps. Six misses in a row stop the polling; six hits start it. */
#define POLL_AFTER_WORK_US 50
#define POLL_RATE_ONE      256 /* the hit rate's fixed point: 1.0 */
#define POLL_RATE_MIN      (POLL_RATE_ONE / 2)

static void learn_gap(struct loop *loop, int64_t gap_us)
{
    int hit = gap_us < POLL_AFTER_WORK_US ? POLL_RATE_ONE : 0;
    loop->poll_rate += (hit - loop->poll_rate) / 8; /* EWMA, 1/8 */
}

static int run(struct loop *loop)
{
    int64_t last_work = 0;
    uint64_t seen = resumes;
    /* Each event_base_loop() call forgets breaks that came before it, so
     * look at them only after a call, as event_base_dispatch() would. */
    for (;;) {
        bool poll =
            loop->poll_rate >= POLL_RATE_MIN && loop_now_us() - last_work < POLL_AFTER_WORK_US;
        first_resume_us = 0;
        int rc = event_base_loop(loop->base, poll ? EVLOOP_NONBLOCK : EVLOOP_ONCE);
        if (rc < 0)
            return -EIO;
        if ((rc == 1 && !poll) || event_base_got_break(loop->base) ||
            event_base_got_exit(loop->base))
            return 0; /* stopped, or nothing left to wait for */
        if (resumes != seen) {
            seen = resumes;
            learn_gap(loop, first_resume_us - last_work);
            last_work = loop_now_us();
        }
    }
}

int loop_run(struct loop *loop)
{
    struct loop *outer = running;
    running = loop;
    int rc = run(loop);
    running = outer;
    return rc;
}

void loop_run_once(struct loop *loop)
{
    struct loop *outer = running;
    running = loop;
    event_base_loop(loop->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    running = outer;
}

void loop_break(struct loop *loop)
{
    event_base_loopbreak(loop->base);
}

/* ---- tasks ---- */

struct spawn_args {
    struct loop *loop;
    coro_fn fn;
    void *arg;
};

/* Runs if the coroutine is destroyed while parked: nothing may keep
 * pointing at its stack. */
static void task_abandon(void *arg)
{
    struct loop_task *t = arg;
    disarm(t);
    unqueue(t);
    loop_unwake(t->co);
}

static void task_main(void *p)
{
    const struct spawn_args *sa = p;
    coro_fn fn = sa->fn;
    void *arg = sa->arg;
    struct loop_task t = {.loop = sa->loop, .co = coro_current(), .state = TASK_RUNNING};
    /* .link is zeroed: in no queue. */

    event_assign(&t.timer, t.loop->base, -1, 0, on_timer, &t);
    event_priority_set(&t.timer, PRIO_NORMAL);
    coro_set_data(t.co, &t);
    coro_defer(t.co, task_abandon, &t); /* the first cleanup: always fits */
    fn(arg);
    coro_undefer(t.co, task_abandon, &t);
}

int loop_spawn(struct loop *loop, coro_fn fn, void *arg, coro_t **out)
{
    struct spawn_args sa = {.loop = loop, .fn = fn, .arg = arg};
    coro_t *co;
    int rc = coro_create(&loop->pool, task_main, &sa, &co);
    if (rc < 0)
        return rc;
    loop->spawned++;
    if (out)
        *out = co;
    clock_cache = loop_now_us();
    if (!coro_resume(co) && out)
        *out = NULL;
    return 0;
}

static struct loop_task *current_task(void)
{
    coro_t *co = coro_current();
    return co ? coro_data(co) : NULL;
}

void loop_trim(struct loop *loop)
{
    coro_pool_trim(&loop->pool);
}

struct loop *loop_current(void)
{
    struct loop_task *t = current_task();
    return t ? t->loop : NULL;
}

static void arm_timer(struct loop_task *t, int64_t deadline_us, int timer_result)
{
    if (deadline_us == LOOP_FOREVER)
        return;
    int64_t left = deadline_us - loop_now_us();
    if (left < 0)
        left = 0;
    struct timeval tv = {.tv_sec = left / 1000000, .tv_usec = left % 1000000};
    /* libevent measures relative timeouts from the time cached at the start
     * of the loop turn; refresh it so time spent running coroutines since
     * does not shorten this one. */
    event_base_update_cache_time(t->loop->base);
    t->timer_result = timer_result;
    event_add(&t->timer, &tv);
    t->timer_armed = true;
}

/* Suspends the task until something ends its park; returns the result. */
static int park(struct loop_task *t)
{
    t->parks++;
    t->state = TASK_PARKED;
    coro_yield();
    return t->result;
}

/* The kernel wakes a timer some tens of microseconds late (more on a busy
 * VM). To end a sleep on time, the timer is set that much early, learnt as
 * a moving average of past lateness, and the rest is spun. */
#define SLACK_MAX_US 200

static void learn_lateness(struct loop *loop, int64_t late_us)
{
    if (late_us > SLACK_MAX_US)
        late_us = SLACK_MAX_US;
    loop->timer_slack_us += (late_us - loop->timer_slack_us) / 8; /* EWMA, 1/8 */
}

int loop_sleep_us(int64_t us)
{
    struct loop_task *t = current_task();
    if (us <= 0)
        return 0;
    int64_t end = loop_now_us() + us;
    int64_t wake = end - t->loop->timer_slack_us;
    arm_timer(t, wake, 0);
    int rc = park(t);
    if (rc < 0)
        return rc;
    int64_t now = loop_now_us();
    learn_lateness(t->loop, t->loop->timer_slack_us + (now - end));
    while (now < end)
        now = loop_now_us();
    clock_cache = now;
    return 0;
}

void loop_yield(void)
{
    struct loop_task *t = current_task();
    t->state = TASK_PARKED;
    make_ready(t, 0);
    coro_yield();
}

int loop_park(int64_t deadline_us)
{
    struct loop_task *t = current_task();
    arm_timer(t, deadline_us, -ETIMEDOUT);
    return park(t);
}

int loop_wake(coro_t *co, int result)
{
    return deliver(coro_data(co), result);
}

int loop_cancel(coro_t *co)
{
    struct loop_task *t = coro_data(co);
    if (t->state != TASK_PARKED)
        return -EALREADY;
    make_late(t, -ECANCELED);
    return 0;
}

bool loop_parked(const coro_t *co)
{
    const struct loop_task *t = coro_data(co);
    return t->state == TASK_PARKED;
}

/* ---- across threads ---- */

/* The loop the caller runs on: the thread's running loop, or the current
 * coroutine's (a coroutine started by loop_spawn before loop_run). */
static struct loop *caller_loop(void)
{
    struct loop_task *t = current_task();
    return running ? running : t ? t->loop : NULL;
}

uint64_t loop_park_ticket(void)
{
    struct loop_task *t = current_task();
    return t ? t->parks + 1 : 0; /* 0: outside a coroutine, no park to come */
}

/* Links item into one of loop's inbox lists (if it is not there already)
 * and pokes the loop if the inbox was empty. Called with inbox_mu held;
 * releases it. */
static void inbox_push(struct loop *loop, struct list_node *list, struct list_node *item)
{
    bool was_empty = list_empty(&loop->inbox) && list_empty(&loop->posts);
    if (!list_linked(item))
        list_push_back(list, item);
    pthread_mutex_unlock(&loop->inbox_mu);
    if (was_empty)
        eventfd_write(loop->inbox_fd, 1);
}

static void need_inbox(const struct loop *loop)
{
    if (loop->inbox_fd < 0)
        abort(); /* a wake or post from another thread, without loop_open_inbox() */
}

void loop_wake_park(coro_t *co, uint64_t ticket, int result)
{
    struct loop_task *t = coro_data(co);
    struct loop *here = caller_loop();
    /* Outside any loop, only a loop with no inbox is ours to touch: one
     * thread drives it by hand (tests, the fuzz driver). */
    if (here == t->loop || (!here && t->loop->inbox_fd < 0)) {
        /* Through the ready queue even on the loop's own stack: the caller
         * may hold a mutex that the woken coroutine takes at once. */
        if (t->parks == ticket && (t->state == TASK_PARKED || t->state == TASK_LATE))
            make_ready(t, result);
        return;
    }
    need_inbox(t->loop);
    pthread_mutex_lock(&t->loop->inbox_mu);
    t->wake_ticket = ticket;
    t->wake_result = result;
    inbox_push(t->loop, &t->loop->inbox, &t->inbox_link);
}

void loop_unwake(coro_t *co)
{
    struct loop_task *t = coro_data(co);
    if (t->loop->inbox_fd < 0)
        return; /* no other thread can have sent anything */
    pthread_mutex_lock(&t->loop->inbox_mu);
    if (list_linked(&t->inbox_link))
        list_remove(&t->inbox_link);
    pthread_mutex_unlock(&t->loop->inbox_mu);
}

/* p->link is not reset here: under inbox_mu it says whether p still waits
 * (inbox_push() then leaves it), and resetting a queued link would cut the
 * list (the stop's second post of a worker's stop_post did: issue 30). */
void loop_post(struct loop *loop, struct loop_post *p)
{
    need_inbox(loop);
    pthread_mutex_lock(&loop->inbox_mu);
    inbox_push(loop, &loop->posts, &p->link);
}

/* The first task woken from another thread, with what it was handed. */
static struct loop_task *pop_wake(struct loop *loop, uint64_t *ticket, int *result)
{
    pthread_mutex_lock(&loop->inbox_mu);
    struct list_node *n = list_first(&loop->inbox);
    struct loop_task *t = n ? list_entry(n, struct loop_task, inbox_link) : NULL;
    if (t) {
        list_remove(n);
        *ticket = t->wake_ticket;
        *result = t->wake_result;
    }
    pthread_mutex_unlock(&loop->inbox_mu);
    return t;
}

static struct loop_post *pop_post(struct loop *loop)
{
    pthread_mutex_lock(&loop->inbox_mu);
    struct list_node *n = list_first(&loop->posts);
    if (n)
        list_remove(n);
    pthread_mutex_unlock(&loop->inbox_mu);
    return n ? list_entry(n, struct loop_post, link) : NULL;
}

/* One item at a time, each taken under the lock: what a woken task does
 * (leave, unwake another) may change the inbox meanwhile. Until both lists
 * are empty: a pusher pokes the eventfd only when it finds both empty, so
 * stopping at the first empty one could strand an item in the other. */
static void on_inbox(void *arg)
{
    struct loop *loop = arg;
    eventfd_t n;
    uint64_t ticket;
    int result;
    eventfd_read(loop->inbox_fd, &n);
    for (;;) {
        struct loop_task *t = pop_wake(loop, &ticket, &result);
        struct loop_post *p = t ? NULL : pop_post(loop);
        if (t && t->parks == ticket)
            deliver(t, result);
        else if (p)
            p->fn(p->arg);
        else if (!t)
            break;
    }
}

int loop_open_inbox(struct loop *loop)
{
    if (loop->inbox_fd >= 0)
        return 0;
    loop->inbox_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->inbox_fd < 0)
        return -errno;
    /* A wake from another thread is a lock hand-off: as urgent as I/O. */
    loop->inbox_watch = loop_watch_fd(loop, loop->inbox_fd, LOOP_PRIO_IO, on_inbox, loop);
    if (!loop->inbox_watch || loop_watch_start(loop->inbox_watch, 0) != 0)
        return -ENOMEM;
    return 0;
}

/* ---- watched descriptors ---- */

static void on_io_event(evutil_socket_t fd, short what, void *arg)
{
    struct loop_io *io = arg;
    struct loop_task *t = io->task;
    (void)fd;
    /* A reset arrives as EPOLLERR|EPOLLHUP, which libevent reports as
     * EV_READ|EV_WRITE without EV_CLOSED: let on_hangup look at any input
     * edge while the owner waits elsewhere. */
    if ((what & (EV_READ | EV_CLOSED)) && !io->waiting && t->state == TASK_PARKED && io->on_hangup)
        io->on_hangup(io->arg);
    if (what & EV_CLOSED) { /* reading tells the owner how the peer left */
        what |= EV_READ;
        io->peer_closed = true;
    }
    io->ready |= what & (EV_READ | EV_WRITE);
    if (io->waiting & what) {
        io->waiting = 0;
        deliver(t, 0);
    }
}

/* Sets the timer for at_us. The time left is taken from the true clock,
 * not loop_clock_us(): that one is as old as the last resume, which for a
 * loop whose connections all sleep can be seconds, and the timer would
 * fire that much late. Setting the timer is rare (see loop_io_wait), so
 * the clock read costs nothing that matters. */
static void io_arm(struct loop_io *io, int64_t at_us)
{
    int64_t left = at_us - loop_now_us();
    if (left < 0)
        left = 0;
    struct timeval tv = {.tv_sec = left / 1000000, .tv_usec = left % 1000000};
    /* libevent adds relative timeouts to the time it cached at the start
     * of the loop turn; bring that up to date too. */
    event_base_update_cache_time(io->task->loop->base);
    event_add(&io->timer, &tv);
    io->timer_at_us = at_us;
    io->timer_set = true;
}

static void on_io_timer(evutil_socket_t fd, short what, void *arg)
{
    struct loop_io *io = arg;
    struct loop_task *t = io->task;
    (void)fd, (void)what;
    io->timer_set = false;
    if (!io->waiting || t->state != TASK_PARKED)
        return; /* nothing to time out; the next wait arms it again */
    if (io->deadline_us > loop_now_us()) {
        io_arm(io, io->deadline_us); /* the deadline moved on meanwhile */
        return;
    }
    io->waiting = 0;
    make_late(t, -ETIMEDOUT);
}

static void io_abandon(void *arg)
{
    loop_io_close(arg);
}

int loop_io_open(struct loop_io *io, int fd, void (*on_hangup)(void *arg), void *arg)
{
    struct loop_task *t = current_task();
    *io = (struct loop_io){
        .task = t, .fd = fd, .ready = EV_READ | EV_WRITE, .on_hangup = on_hangup, .arg = arg};
    event_assign(&io->rev, t->loop->base, fd, EV_READ | EV_CLOSED | EV_ET | EV_PERSIST, on_io_event,
                 io);
    event_assign(&io->wev, t->loop->base, fd, EV_WRITE | EV_ET | EV_PERSIST, on_io_event, io);
    event_assign(&io->timer, t->loop->base, -1, 0, on_io_timer, io);
    event_priority_set(&io->rev, PRIO_NORMAL);
    event_priority_set(&io->wev, PRIO_NORMAL);
    event_priority_set(&io->timer, PRIO_NORMAL);
    if (event_add(&io->rev, NULL) != 0)
        return -EINVAL;
    int rc = coro_defer(t->co, io_abandon, io);
    if (rc < 0)
        event_del(&io->rev);
    return rc;
}

void loop_io_close(struct loop_io *io)
{
    event_del(&io->rev);
    if (io->write_watched)
        event_del(&io->wev);
    if (io->timer_set)
        event_del(&io->timer);
    coro_undefer(io->task->co, io_abandon, io);
}

void loop_io_clear(struct loop_io *io, short what)
{
    /* After the peer's FIN a read returns 0 at once, and no edge will come
     * again to say so: its edge may have come with the last data. */
    if (io->peer_closed)
        what &= (short)~EV_READ;
    io->ready &= (short)~what;
}

int loop_io_wait(struct loop_io *io, short what, int64_t deadline_us)
{
    struct loop_task *t = io->task;
    if (io->ready & what)
        return 0;
    /* Writes rarely block: watch for room only from the first time one does. */
    if ((what & EV_WRITE) && !io->write_watched) {
        if (event_add(&io->wev, NULL) != 0)
            return -EINVAL;
        io->write_watched = true;
    }
    io->deadline_us = deadline_us;
    if (deadline_us != LOOP_FOREVER && (!io->timer_set || io->timer_at_us > deadline_us))
        io_arm(io, deadline_us);
    io->waiting = what;
    int rc = park(t);
    io->waiting = 0;
    return rc;
}

/* ---- callbacks ---- */

struct loop_watch {
    struct event ev;
    struct loop *loop;
    loop_watch_fn fn;
    void *arg;
    bool timer;
    int sig;    /* a signal watch's signal, else 0 */
    int sig_fd; /* its signalfd, else -1 */
};

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct loop_watch *w = arg;
    (void)fd, (void)what;
    w->fn(w->arg);
}

/* Takes one signal out of a signalfd; false when none is left. */
static bool take_signal(int fd)
{
    struct signalfd_siginfo si;
    return read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si);
}

/* One call of fn per signal: the descriptor is level-triggered, so it is
 * read until empty. */
static void on_signal_fd(evutil_socket_t fd, short what, void *arg)
{
    struct loop_watch *w = arg;
    (void)what;
    while (take_signal(fd))
        w->fn(w->arg);
}

/* cb: on_watch, or on_signal_fd for a signal's descriptor. */
static struct loop_watch *watch_new(struct loop *loop, int fd, short events, enum loop_prio prio,
                                    event_callback_fn cb, loop_watch_fn fn, void *arg)
{
    struct loop_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    *w = (struct loop_watch){.loop = loop, .fn = fn, .arg = arg, .timer = fd < 0, .sig_fd = -1};
    if (event_assign(&w->ev, loop->base, fd, events, cb, w) != 0 ||
        event_priority_set(&w->ev, prio == LOOP_PRIO_LATE ? PRIO_LATE : PRIO_NORMAL) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

struct loop_watch *loop_watch_fd(struct loop *loop, int fd, enum loop_prio prio, loop_watch_fn fn,
                                 void *arg)
{
    return watch_new(loop, fd, EV_READ | EV_PERSIST, prio, on_watch, fn, arg);
}

static sigset_t one_signal(int sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return set;
}

/* Why a signalfd and not a handler (libevent's EV_SIGNAL): then no handler
 * runs on whatever stack the thread is on, a coroutine's included. Under
 * ThreadSanitizer that lost signals: it runs a handler only at the next
 * intercepted call on the same fiber, so a SIGTERM that came while a
 * coroutine was past its last such call, on its way to its end, waited for
 * ever on a fiber that was gone (issue 30). */
struct loop_watch *loop_watch_signal(struct loop *loop, int sig, enum loop_prio prio,
                                     loop_watch_fn fn, void *arg)
{
    sigset_t set = one_signal(sig);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct loop_watch *w = watch_new(loop, fd, EV_READ | EV_PERSIST, prio, on_signal_fd, fn, arg);
    if (!w) {
        close(fd);
        return NULL;
    }
    w->sig = sig;
    w->sig_fd = fd;
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* from now on it waits in fd */
    return w;
}

struct loop_watch *loop_watch_timer(struct loop *loop, bool periodic, enum loop_prio prio,
                                    loop_watch_fn fn, void *arg)
{
    return watch_new(loop, -1, periodic ? EV_PERSIST : 0, prio, on_watch, fn, arg);
}

int loop_watch_start(struct loop_watch *w, int64_t after_us)
{
    struct timeval tv = {.tv_sec = after_us / 1000000, .tv_usec = after_us % 1000000};
    if (w->timer)
        event_base_update_cache_time(w->loop->base); /* as in arm_timer() */
    return event_add(&w->ev, w->timer ? &tv : NULL) == 0 ? 0 : -EINVAL;
}

void loop_watch_stop(struct loop_watch *w)
{
    event_del(&w->ev);
}

bool loop_watch_active(const struct loop_watch *w)
{
    return event_pending(&w->ev, EV_READ | EV_TIMEOUT, NULL) != 0;
}

void loop_watch_free(struct loop_watch *w)
{
    if (!w)
        return;
    event_del(&w->ev);
    if (w->sig_fd >= 0) {
        /* What came since the loop last looked is dropped, as libevent
         * dropped it; the signal then does what it did before. */
        while (take_signal(w->sig_fd))
            continue;
        sigset_t set = one_signal(w->sig);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        close(w->sig_fd);
    }
    free(w);
}
