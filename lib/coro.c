/* coro: stackful coroutines. See coro.h for the contract.
 *
 * The switch saves only what the C ABI says a callee must preserve (as
 * lwan and libdill do): on x86-64 rbx, rbp, r12-r15 and the stack pointer;
 * on aarch64 x19-x30, d8-d15 and sp. Everything else is already saved by the
 * compiler around the call. Other CPUs fall back to ucontext, which is
 * slower (it saves the signal mask with a syscall) but portable. */
#include "coro.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* CORO_FORCE_UCONTEXT builds the fallback on any CPU, to test it. */
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(CORO_FORCE_UCONTEXT)
#define CORO_ASM 1
#else
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORO_TSAN 1
#endif
#endif
#ifdef CORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#ifdef CORO_ASM
typedef struct {
    void *sp;
} coro_ctx;
/* Saves the callee-saved registers on the current stack, stores the stack
 * pointer in *from, loads to and restores what was saved there. */
void coro_switch_asm(void **from, void *to);
void coro_trampoline_asm(void);
#else
typedef ucontext_t coro_ctx;
#endif

struct coro {
    coro_ctx ctx;
    coro_ctx *caller; /* where coro_yield() returns to */
    coro_fn fn;
    void *arg;
    void *data;
    struct coro_pool *pool;
    coro_t *next_free;
    bool finished;
    unsigned ndefer;
    struct {
        void (*fn)(void *);
        void *arg;
    } defer[CORO_MAX_DEFER];
#ifdef CORO_ASAN
    const void *caller_bottom; /* the resumer's stack, for ASan's fiber API */
    size_t caller_size;
#endif
#ifdef CORO_TSAN
    void *tsan_fiber;  /* ThreadSanitizer's view of this stack */
    void *tsan_caller; /* and of the resumer's */
#endif
};

static _Thread_local coro_t *current;
static _Thread_local coro_ctx thread_ctx; /* the thread's own stack */

#ifdef CORO_ASM
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl coro_switch_asm\n"
        ".type coro_switch_asm,@function\n"
        ".hidden coro_switch_asm\n"
        "coro_switch_asm:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        /* Not `ret`: the CPU's return-stack predictor would guess the
         * caller on the old stack and miss every time. An indirect jump
         * is predicted from history, and a switch costs a third. */
        "    popq %rcx\n"
        "    jmpq *%rcx\n"
        ".size coro_switch_asm,.-coro_switch_asm\n"
        /* A new stack "returns" here with the coroutine in r12. */
        ".globl coro_trampoline_asm\n"
        ".type coro_trampoline_asm,@function\n"
        ".hidden coro_trampoline_asm\n"
        "coro_trampoline_asm:\n"
        "    movq %r12, %rdi\n"
        "    call coro_main\n"
        "    ud2\n"
        ".size coro_trampoline_asm,.-coro_trampoline_asm\n");
enum { CORO_SAVED_WORDS = 6 }; /* r15 r14 r13 r12 rbx rbp, then return address */
#define CORO_ARG_SLOT 3        /* r12 */
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl coro_switch_asm\n"
        ".type coro_switch_asm,%function\n"
        ".hidden coro_switch_asm\n"
        "coro_switch_asm:\n"
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mov x2, sp\n"
        "    str x2, [x0]\n"
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #176\n"
        "    ret\n"
        ".size coro_switch_asm,.-coro_switch_asm\n"
        /* A new stack "returns" here (x30) with the coroutine in x19. */
        ".globl coro_trampoline_asm\n"
        ".type coro_trampoline_asm,%function\n"
        ".hidden coro_trampoline_asm\n"
        "coro_trampoline_asm:\n"
        "    mov x0, x19\n"
        "    bl coro_main\n"
        "    brk #0\n"
        ".size coro_trampoline_asm,.-coro_trampoline_asm\n");
#endif
#endif

/* Entered once per coroutine life on its own stack; never returns. Not
 * static: the trampoline calls it by name, which link-time optimization
 * cannot see, hence `used` (and, for GCC, externally_visible). */
#if defined(__GNUC__) && !defined(__clang__)
#define CORO_ASM_VISIBLE __attribute__((used, noinline, externally_visible))
#else
#define CORO_ASM_VISIBLE __attribute__((used, noinline))
#endif
CORO_ASM_VISIBLE void coro_main(coro_t *co);

static void switch_to(coro_ctx *from, coro_ctx *to)
{
#ifdef CORO_ASM
    coro_switch_asm(&from->sp, to->sp);
#else
    swapcontext(from, to);
#endif
}

static char *stack_lo(const coro_t *co)
{
    return (char *)co - co->pool->stack_size;
}

/* ASan must be told about every stack switch, or it takes the coroutine's
 * stack for a corrupted one. Without ASan these compile to nothing. */
static void asan_enter(void **fake, const coro_t *co)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(fake, stack_lo(co), co->pool->stack_size);
#else
    (void)fake, (void)co;
#endif
}

static void asan_leave(void **fake, const coro_t *co)
{
#ifdef CORO_ASAN
    __sanitizer_start_switch_fiber(fake, co->caller_bottom, co->caller_size);
#else
    (void)fake, (void)co;
#endif
}

static void asan_arrived(void *fake, coro_t *co)
{
#ifdef CORO_ASAN
    /* Inside a coroutine, remember the resumer's stack: the next yield goes
     * there. */
    if (co)
        __sanitizer_finish_switch_fiber(fake, &co->caller_bottom, &co->caller_size);
    else
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    (void)fake, (void)co;
#endif
}

/* A destroyed coroutine never unwound, so the redzones its frames poisoned
 * stay poisoned. On the reused stack, code built without ASan (a library)
 * that puts a buffer there and hands it to an intercepted call (snprintf)
 * would be reported: clear the whole stack. */
static void asan_forget_stack(const coro_t *co)
{
#ifdef CORO_ASAN
    __asan_unpoison_memory_region(stack_lo(co), co->pool->stack_size);
#else
    (void)co;
#endif
}

/* ThreadSanitizer, likewise, keeps a shadow stack per fiber: each switch
 * names the fiber it goes to. Without TSan these compile to nothing. */
static void tsan_to(void *fiber)
{
#ifdef CORO_TSAN
    __tsan_switch_to_fiber(fiber, 0);
#else
    (void)fiber;
#endif
}

static void *tsan_caller(coro_t *co)
{
#ifdef CORO_TSAN
    return co->tsan_caller;
#else
    (void)co;
    return NULL;
#endif
}

static void run_defers(coro_t *co)
{
    while (co->ndefer > 0) {
        co->ndefer--;
        co->defer[co->ndefer].fn(co->defer[co->ndefer].arg);
    }
}

CORO_ASM_VISIBLE void coro_main(coro_t *co)
{
    asan_arrived(NULL, co);
    co->fn(co->arg);
    run_defers(co);
    co->finished = true;
    /* NULL: this frame is never resumed, so ASan may drop its fake stack. */
    asan_leave(NULL, co);
    tsan_to(tsan_caller(co));
    switch_to(&co->ctx, co->caller);
    abort(); /* a finished coroutine is never switched back to */
}

#ifndef CORO_ASM
/* makecontext passes int arguments only: split the pointer in two. */
static void ucontext_entry(unsigned hi, unsigned lo)
{
    coro_main((coro_t *)(((uintptr_t)hi << 32) | lo));
}
#endif

static void prepare_stack(coro_t *co)
{
#ifdef CORO_ASM
    /* Build the frame coro_switch_asm pops: saved registers, then the
     * trampoline as return address. The stack top is 16-byte aligned and
     * the trampoline's call must see it aligned again, hence the padding. */
    uintptr_t top = (uintptr_t)co & ~(uintptr_t)15;
#if defined(__x86_64__)
    void **sp = (void **)(top - 9 * sizeof(void *));
    for (int i = 0; i < CORO_SAVED_WORDS; i++)
        sp[i] = NULL;
    sp[CORO_ARG_SLOT] = co;
    sp[CORO_SAVED_WORDS] = (void *)coro_trampoline_asm;
#else
    void **sp = (void **)(top - 176);
    for (int i = 0; i < 22; i++)
        sp[i] = NULL;
    sp[0] = co;                           /* x19 */
    sp[11] = (void *)coro_trampoline_asm; /* x30 */
#endif
    co->ctx.sp = sp;
#else
    getcontext(&co->ctx);
    co->ctx.uc_stack.ss_sp = stack_lo(co);
    co->ctx.uc_stack.ss_size = co->pool->stack_size;
    co->ctx.uc_link = NULL;
    uintptr_t p = (uintptr_t)co;
    makecontext(&co->ctx, (void (*)(void))ucontext_entry, 2, (unsigned)(p >> 32),
                (unsigned)(p & 0xffffffffu));
#endif
}

static size_t page_size(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

void coro_pool_init(struct coro_pool *pool, size_t stack_size, unsigned max_free)
{
    size_t page = page_size();
    if (stack_size == 0)
        stack_size = CORO_DEFAULT_STACK;
    *pool = (struct coro_pool){.max_free = max_free};
    /* struct coro sits at the top of the mapping, above the stack. */
    pool->map_size = page + round_up(stack_size + sizeof(coro_t), page);
    pool->stack_size = pool->map_size - page - sizeof(coro_t);
}

/* The mapping is [guard page][stack ... ][struct coro]. */
static void *map_base(const coro_t *co)
{
    return (char *)co + sizeof(coro_t) - co->pool->map_size;
}

static void unmap(coro_t *co)
{
    munmap(map_base(co), co->pool->map_size);
}

void coro_pool_trim(struct coro_pool *pool)
{
    while (pool->free_list) {
        coro_t *co = pool->free_list;
        pool->free_list = co->next_free;
        unmap(co);
    }
    pool->nfree = 0;
}

void coro_pool_fini(struct coro_pool *pool)
{
    coro_pool_trim(pool);
}

static coro_t *map_stack(struct coro_pool *pool)
{
    /* MAP_NORESERVE: only touched pages cost memory. The guard page splits
     * the mapping in two, which is what counts against vm.max_map_count. */
    char *base = mmap(NULL, pool->map_size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (mprotect(base, page_size(), PROT_NONE) != 0) {
        munmap(base, pool->map_size);
        return NULL;
    }
    pool->nmaps++;
    return (coro_t *)(base + pool->map_size - sizeof(coro_t));
}

int coro_create(struct coro_pool *pool, coro_fn fn, void *arg, coro_t **out)
{
    coro_t *co = pool->free_list;
    if (co) {
        pool->free_list = co->next_free;
        pool->nfree--;
    } else {
        co = map_stack(pool);
        if (!co)
            return -ENOMEM;
    }
    *co = (coro_t){.fn = fn, .arg = arg, .pool = pool};
#ifdef CORO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif
    prepare_stack(co);
    pool->nlive++;
    *out = co;
    return 0;
}

static void recycle(coro_t *co)
{
    struct coro_pool *pool = co->pool;
#ifdef CORO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    pool->nlive--;
    if (pool->nfree >= pool->max_free) {
        unmap(co);
        return;
    }
    co->next_free = pool->free_list;
    pool->free_list = co;
    pool->nfree++;
}

bool coro_resume(coro_t *co)
{
    coro_t *prev = current;
    void *fake = NULL;
    co->caller = prev ? &prev->ctx : &thread_ctx;
    current = co;
    asan_enter(&fake, co);
#ifdef CORO_TSAN
    co->tsan_caller = __tsan_get_current_fiber();
    tsan_to(co->tsan_fiber);
#endif
    switch_to(co->caller, &co->ctx);
    asan_arrived(fake, NULL); /* back on our own stack: nothing to record */
    current = prev;
    if (!co->finished)
        return true;
    recycle(co);
    return false;
}

void coro_yield(void)
{
    coro_t *co = current;
    void *fake = NULL;
    asan_leave(&fake, co);
    tsan_to(tsan_caller(co));
    switch_to(&co->ctx, co->caller);
    asan_arrived(fake, co);
}

coro_t *coro_current(void)
{
    return current;
}

int coro_defer(coro_t *co, void (*fn)(void *), void *arg)
{
    if (co->ndefer == CORO_MAX_DEFER)
        return -ENOSPC;
    co->defer[co->ndefer].fn = fn;
    co->defer[co->ndefer].arg = arg;
    co->ndefer++;
    return 0;
}

void coro_undefer(coro_t *co, void (*fn)(void *), void *arg)
{
    for (unsigned i = co->ndefer; i-- > 0;) {
        if (co->defer[i].fn == fn && co->defer[i].arg == arg) {
            for (; i + 1 < co->ndefer; i++)
                co->defer[i] = co->defer[i + 1];
            co->ndefer--;
            return;
        }
    }
}

void coro_destroy(coro_t *co)
{
    run_defers(co);
    asan_forget_stack(co);
    recycle(co);
}

void coro_set_data(coro_t *co, void *data)
{
    co->data = data;
}

void *coro_data(const coro_t *co)
{
    return co->data;
}

const void *coro_guard_page(const coro_t *co)
{
    return stack_lo(co) - page_size();
}
