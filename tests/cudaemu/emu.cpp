// emu.cpp (cudaemu): the CUDA runtime + cuBLAS emulator behind tests/cudaemu/include/*.h.
// Runs the translated engine/cuda kernels on the CPU for tests; never part of the product.
//
// Model (docs/cuda.md, "Running the kernels without a GPU"):
// - One emulated device. Device and pinned host allocations are recorded; copies, memsets,
//   kernel arguments and GEMM operands must lie inside live allocations. Outside ASan every
//   allocation sits between PROT_NONE guard pages (end-aligned to 256 bytes) and freed blocks
//   stay PROT_NONE for a while, so out-of-bounds and use-after-free accesses from kernels fault
//   and the SIGSEGV handler names the kernel, block and thread; under ASan plain heap blocks let
//   ASan report them. New allocations are filled with 0xFF bytes (NaN floats), never zeros.
// - Work queued on streams (copies, memsets, kernels, GEMMs) runs in submission order when the
//   host synchronises: cudaStreamSynchronize, cudaDeviceSynchronize, cudaFree/cudaFreeHost,
//   copies to pageable host memory (synchronous in CUDA). A copy from pageable host memory is
//   staged at the call, as CUDA documents.
// - A grid runs block after block (reverse order with PB_CUDAEMU_ORDER=reverse). The threads of
//   a block are cooperative fibers (own x86-64 context switch; ucontext elsewhere) that only
//   switch at __syncthreads / warp intrinsics; between barriers the threads run in forward or
//   reverse order. A thread that never waits runs to completion on a pooled fiber, so only
//   threads that suspend hold a stack.
// - Misuse aborts with a message naming the kernel, launch site, block and thread: a barrier
//   not reached by every thread of the block (or reached at different sites), a shuffle with a
//   partial mask, in a partial warp, or with lanes missing, invalid launch configurations left
//   unchecked, pointer arguments that are not device memory.
// Not thread-safe: one host thread drives the emulated device (checked).
#include "cuda_runtime.h"
#include "cublas_v2.h"

#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <execinfo.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define PB_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PB_EMU_ASAN 1
#endif
#endif
#ifndef PB_EMU_ASAN
#define PB_EMU_ASAN 0
#endif
#if PB_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// ----------------------------------------------------------------------------
// State

namespace {

enum { K_DEVICE = 1, K_PINNED = 2 };

struct Alloc {
    uintptr_t lo;
    size_t size;
    int kind;
    void *map;      // mapping (guard mode) or malloc block
    size_t maplen;
    bool open;      // guard mode, device memory: pages readable now (see "Host access" below)
};

struct Op {
    const char *file = "?";
    int line = 0;
    virtual ~Op() {}
    virtual void run() = 0;
};

struct KernelOp;
struct Fiber;

struct ThreadRec {
    pb_emu_thread_ctx ctx;
    int lin = 0;
    int state = 0; // S_NEW, S_RUNNABLE, S_WAIT, S_DONE
    Fiber *fiber = nullptr;
    // what the thread waits at (S_WAIT)
    int wkind = 0; // W_SYNC, W_SHFL, W_SYNCWARP
    const char *wfile = nullptr;
    int wline = 0;
    int skind = 0, sarg = 0, swidth = 32;
    unsigned smask = 0;
    uint64_t sval = 0, sres = 0;
};
enum { S_NEW = 0, S_RUNNABLE, S_WAIT, S_DONE };
enum { W_SYNC = 1, W_SHFL, W_SYNCWARP };

struct Fiber {
    void *sp = nullptr;
    char *stack_lo = nullptr; // usable stack [stack_lo, stack_lo + stack_size)
    size_t stack_size = 0;
    ThreadRec *thr = nullptr;
    void *asan_fake = nullptr;
#if !defined(__x86_64__)
    ucontext_t uc;
#endif
};

struct pb_emu_stream_s {};

pthread_t g_owner;
bool g_owner_set = false;
std::map<uintptr_t, Alloc> g_live, g_freed;
std::deque<uintptr_t> g_freed_fifo;
std::deque<Op *> g_queue;
cudaError_t g_last_error = cudaSuccess;
const char *g_last_error_site = nullptr; // kernel name of an unchecked launch error
int g_order = -1;                        // 0 forward, 1 reverse
unsigned long long g_kernels = 0, g_threads = 0, g_fibers = 0;
int g_devices = -1;

// Current kernel (diagnostics and the scheduler)
KernelOp *g_kernel = nullptr;
ThreadRec *g_thread = nullptr;
std::vector<ThreadRec> g_threads_v;
std::vector<Fiber *> g_idle;
// Every fiber ever made; released at exit (all are idle then: no kernel runs during exit).
struct FiberPool {
    std::vector<Fiber *> all;
    ~FiberPool();
} g_pool;
std::vector<int> g_warp_arrived;
std::vector<std::pair<void *, size_t>> g_block_shared;
size_t g_block_shared_bytes = 0;
std::vector<unsigned char> g_dyn_shared;
void *g_main_sp = nullptr;
[[maybe_unused]] void *g_main_fake = nullptr;
[[maybe_unused]] const void *g_main_bottom = nullptr; // the host stack (ASan fiber annotations)
[[maybe_unused]] size_t g_main_size = 0;

// Host access (guard mode): device allocations are PROT_NONE while host code runs. Emulated
// device work (kernels, copies, GEMMs, in flush()) opens an allocation on its first fault and
// flush() closes them again, so host code that dereferences a device pointer faults and is
// reported, as it would crash on a GPU.
bool g_in_device = false;
std::vector<Alloc *> g_opened; // capacity reserved: the fault handler must not allocate
bool g_host_guard = !PB_EMU_ASAN;

const size_t PAGE = 4096;
const size_t SHARED_LIMIT = 48 * 1024;
#if PB_EMU_ASAN
const size_t FIBER_STACK = 512 * 1024;
#else
const size_t FIBER_STACK = 64 * 1024;
#endif

std::unordered_map<pb_emu_fn, const char *> &names() {
    static std::unordered_map<pb_emu_fn, const char *> m;
    return m;
}

const char *kname(pb_emu_fn k) {
    auto it = names().find(k);
    return it == names().end() ? "(unnamed kernel)" : it->second;
}

struct KernelOp final : Op {
    pb_emu_fn k = nullptr;
    const char *name = "";
    dim3 grid, block;
    size_t shmem = 0;
    pb_emu_job *job = nullptr;
    uint3 cur_block{0, 0, 0};
    ~KernelOp() override { delete job; }
    void run() override;
};

void print_context(FILE *f) {
    if (g_kernel) {
        fprintf(f, "cudaemu:   in kernel %s (launched at %s:%d, grid (%u,%u,%u), block (%u,%u,%u)), "
                   "block (%u,%u,%u)",
                g_kernel->name, g_kernel->file, g_kernel->line, g_kernel->grid.x, g_kernel->grid.y,
                g_kernel->grid.z, g_kernel->block.x, g_kernel->block.y, g_kernel->block.z,
                g_kernel->cur_block.x, g_kernel->cur_block.y, g_kernel->cur_block.z);
        if (g_thread)
            fprintf(f, ", thread (%u,%u,%u)", g_thread->ctx.tid.x, g_thread->ctx.tid.y,
                    g_thread->ctx.tid.z);
        fprintf(f, "\n");
    }
}

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cudaemu: FATAL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    print_context(stderr);
    fflush(stderr);
    abort();
}

__attribute__((format(printf, 1, 2))) void diag(const char *fmt, ...) {
    fflush(stdout);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cudaemu: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
}

void check_owner() {
    if (!g_owner_set) {
        g_owner = pthread_self();
        g_owner_set = true;
    } else if (!pthread_equal(g_owner, pthread_self())) {
        die("the emulated device is driven from two host threads (cudaemu is single-threaded)");
    }
}

// ----------------------------------------------------------------------------
// Allocations

const Alloc *find_in(const std::map<uintptr_t, Alloc> &m, uintptr_t p) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) return nullptr;
    --it;
    const Alloc &a = it->second;
    if (p >= a.lo && p <= a.lo + a.size) return &a;
    return nullptr;
}

// The live allocation holding [p, p+n) (n = 0: p may be one past the end), or null.
const Alloc *find_range(const void *pv, size_t n, int kinds) {
    uintptr_t p = (uintptr_t)pv;
    const Alloc *a = find_in(g_live, p);
    if (!a || !(a->kind & kinds)) return nullptr;
    if (n > a->size || p - a->lo > a->size - n) return nullptr;
    return a;
}

std::string describe_ptr(const void *pv, size_t n) {
    char buf[256];
    uintptr_t p = (uintptr_t)pv;
    if (const Alloc *a = find_in(g_live, p)) {
        snprintf(buf, sizeof buf,
                 "[%p,+%zu) overruns the %s allocation [%p,+%zu) by %zu bytes", pv, n,
                 a->kind == K_DEVICE ? "device" : "pinned host", (void *)a->lo, a->size,
                 (size_t)(p + n - (a->lo + a->size)));
    } else if (const Alloc *f = find_in(g_freed, p)) {
        snprintf(buf, sizeof buf, "%p is inside a FREED %s allocation [%p,+%zu) (use after free)",
                 pv, f->kind == K_DEVICE ? "device" : "pinned host", (void *)f->lo, f->size);
    } else {
        snprintf(buf, sizeof buf, "%p is not inside any device or pinned allocation (host memory?)",
                 pv);
    }
    return buf;
}

void fill_garbage(void *p, size_t n) { memset(p, 0xFF, n); }

void *raw_alloc(size_t size, Alloc &a) {
#if PB_EMU_ASAN
    void *p = nullptr;
    if (posix_memalign(&p, 256, size)) return nullptr;
    a.map = p;
    a.maplen = size;
    a.lo = (uintptr_t)p;
#else
    const size_t rounded = (size + 255) & ~(size_t)255;
    const size_t data = (rounded + PAGE - 1) / PAGE * PAGE;
    const size_t len = data + 2 * PAGE;
    void *m = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    if (mprotect((char *)m + PAGE, data, PROT_READ | PROT_WRITE)) {
        munmap(m, len);
        return nullptr;
    }
    a.map = m;
    a.maplen = len;
    a.lo = (uintptr_t)m + PAGE + data - rounded;
    // the < 256 bytes between the end and the guard page hold a pattern checked at free
    memset((char *)a.lo + size, 0xA5, rounded - size);
    a.open = true; // do_alloc closes device memory after filling it
#endif
    a.size = size;
    return (void *)a.lo;
}

void set_open(Alloc &a, bool open) {
#if !PB_EMU_ASAN
    if (a.open == open) return;
    const size_t data = a.maplen - 2 * PAGE;
    if (mprotect((char *)a.map + PAGE, data, open ? PROT_READ | PROT_WRITE : PROT_NONE))
        die("mprotect failed: %s", strerror(errno));
#endif
    a.open = open;
}

void raw_free(Alloc a) {
#if PB_EMU_ASAN
    free(a.map); // ASan's quarantine reports later uses
    a.map = nullptr;
#else
    set_open(a, true);
    const size_t rounded = (a.size + 255) & ~(size_t)255;
    for (size_t i = a.size; i < rounded; i++)
        if (((unsigned char *)a.lo)[i] != 0xA5)
            die("write past the end of the %s allocation [%p,+%zu) detected at free (byte %zu)",
                a.kind == K_DEVICE ? "device" : "pinned host", (void *)a.lo, a.size, i);
    mprotect(a.map, a.maplen, PROT_NONE);
    madvise(a.map, a.maplen, MADV_DONTNEED);
#endif
    g_freed[a.lo] = a;
    g_freed_fifo.push_back(a.lo);
    if (g_freed_fifo.size() > 4096) { // bounded quarantine
        auto it = g_freed.find(g_freed_fifo.front());
        g_freed_fifo.pop_front();
        if (it != g_freed.end()) {
#if !PB_EMU_ASAN
            munmap(it->second.map, it->second.maplen);
#endif
            g_freed.erase(it);
        }
    }
}

[[maybe_unused]] void segv_handler(int sig, siginfo_t *si, void *) {
    const void *addr = si->si_addr;
    // A closed device allocation touched by emulated device work: open it and retry. (The fault
    // comes from our own code on this thread while no allocation changes: the lookup is safe.)
    auto it = g_live.upper_bound((uintptr_t)addr);
    Alloc *a = nullptr;
    if (it != g_live.begin()) {
        --it;
        if ((uintptr_t)addr >= it->second.lo && (uintptr_t)addr < it->second.lo + it->second.size)
            a = &it->second;
    }
    if (sig == SIGSEGV && a && a->kind == K_DEVICE && !a->open && g_in_device &&
        g_opened.size() < g_opened.capacity()) {
        const size_t data = a->maplen - 2 * PAGE;
        if (!mprotect((char *)a->map + PAGE, data, PROT_READ | PROT_WRITE)) {
            a->open = true;
            g_opened.push_back(a);
            return;
        }
    }
    // Not async-signal-safe from here on, but the process is about to die anyway.
    if (a && a->kind == K_DEVICE && !g_in_device) {
        fprintf(stderr,
                "cudaemu: FATAL: host code dereferenced device memory at %p (device allocation "
                "[%p,+%zu)): host code must move data with cudaMemcpy*, this crashes on a GPU\n",
                addr, (void *)a->lo, a->size);
    } else {
        fprintf(stderr, "cudaemu: FATAL: illegal memory access at %p (%s): %s\n", addr,
                sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", describe_ptr(addr, 1).c_str());
    }
    if (!g_kernel) {
        fprintf(stderr, "cudaemu:   in host code (no kernel running); backtrace:\n");
        void *bt[32];
        backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
    }
    print_context(stderr);
    fflush(stderr);
    signal(sig, SIG_DFL);
    raise(sig);
}

#if PB_EMU_ASAN
void asan_death() { print_context(stderr); }
#endif

void install_handlers() {
    static bool done = false;
    if (done) return;
    done = true;
#if PB_EMU_ASAN
    __sanitizer_set_death_callback(asan_death);
#else
    static char altstack[64 * 1024];
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
#endif
}

cudaError_t do_alloc(void **ptr, size_t bytes, int kind) {
    check_owner();
    install_handlers();
    if (!ptr) return g_last_error = cudaErrorInvalidValue;
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    Alloc a{};
    a.kind = kind;
    void *p = raw_alloc(bytes, a);
    if (!p) return g_last_error = cudaErrorMemoryAllocation;
    fill_garbage(p, bytes); // cudaMalloc does not zero
    if (kind == K_DEVICE && g_host_guard && !g_in_device) set_open(a, false);
    // The address range may be reused: forget freed blocks it overlaps.
    // (Freed records never overlap each other, so only neighbours of [lo, lo+bytes) matter.)
    auto it = g_freed.upper_bound(a.lo);
    if (it != g_freed.begin()) --it;
    while (it != g_freed.end() && it->second.lo < a.lo + bytes) {
        if (a.lo < it->second.lo + it->second.size) it = g_freed.erase(it);
        else ++it;
    }
    g_live[a.lo] = a;
    *ptr = p;
    return cudaSuccess;
}

// ----------------------------------------------------------------------------
// Queue

void flush() {
    check_owner();
    if (g_queue.empty()) return;
    if (g_opened.capacity() == 0) g_opened.reserve(1 << 16);
    g_in_device = true;
    while (!g_queue.empty()) {
        Op *op = g_queue.front();
        g_queue.pop_front();
        op->run();
        delete op;
    }
    g_in_device = false;
    for (Alloc *a : g_opened) set_open(*a, false);
    g_opened.clear();
}

std::map<cudaStream_t, bool> g_streams; // live streams (created ones)

bool stream_ok(cudaStream_t s) { return !s || g_streams.count(s); }

void enqueue(cudaStream_t s, Op *op) {
    (void)s; // one FIFO: a stream sync runs every earlier op (a legal, conservative schedule)
    if (g_last_error_site) {
        die("the launch error of kernel %s (%s) was never read with cudaGetLastError before more "
            "work was queued",
            g_last_error_site, cudaGetErrorString(g_last_error));
    }
    g_queue.push_back(op);
}

struct CopyOp final : Op {
    void *dst;
    const void *src;
    size_t n;
    std::vector<unsigned char> staged;
    void run() override { memcpy(dst, staged.empty() ? src : staged.data(), n); }
};
struct SetOp final : Op {
    void *dst;
    int v;
    size_t n;
    void run() override { memset(dst, v, n); }
};

// ----------------------------------------------------------------------------
// Fibers

#if defined(__x86_64__)
extern "C" void pb_emu_ctx_switch(void **save_sp, void *to_sp);
extern "C" void pb_emu_fiber_start(void);
// Saves the callee-saved registers, the x87 control word and MXCSR on the current stack,
// stores the stack pointer in *save_sp and continues on to_sp (the same layout).
asm(R"(
    .pushsection .text
    .globl pb_emu_ctx_switch
    .type pb_emu_ctx_switch,@function
pb_emu_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw (%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    fldcw (%rsp)
    ldmxcsr 8(%rsp)
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size pb_emu_ctx_switch,.-pb_emu_ctx_switch
    .globl pb_emu_fiber_start
    .type pb_emu_fiber_start,@function
pb_emu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size pb_emu_fiber_start,.-pb_emu_fiber_start
    .popsection
)");
#endif

void fiber_main(Fiber *f);

// The scheduler's pass over the block: position g_pass_k of g_pass_n in run order.
int g_pass_k = 0, g_pass_n = 0;
ThreadRec *pass_thread(int k) {
    return &g_threads_v[(size_t)(g_order == 1 ? g_pass_n - 1 - k : k)];
}

#if !defined(__x86_64__)
void fiber_tramp(unsigned hi, unsigned lo) {
    fiber_main((Fiber *)(((uintptr_t)hi << 32) | lo));
}
ucontext_t g_main_uc;
#endif

Fiber *new_fiber() {
    Fiber *f = new Fiber;
    g_pool.all.push_back(f);
    const size_t len = FIBER_STACK + PAGE;
    void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) die("cannot map a fiber stack: %s", strerror(errno));
    mprotect(m, PAGE, PROT_NONE); // overflow guard
    f->stack_lo = (char *)m + PAGE;
    f->stack_size = FIBER_STACK;
    g_fibers++;
#if defined(__x86_64__)
    uintptr_t top = ((uintptr_t)f->stack_lo + f->stack_size) & ~(uintptr_t)15;
    uintptr_t frame_end = top - 16;  // rsp after the `ret` into pb_emu_fiber_start: 16-aligned
    uint64_t *w = (uint64_t *)(frame_end - 72);
    uint16_t fcw;
    uint32_t mxcsr;
    asm volatile("fnstcw %0" : "=m"(fcw));
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    w[0] = fcw;
    w[1] = mxcsr;
    w[2] = 0;                               // r15
    w[3] = 0;                               // r14
    w[4] = (uint64_t)(uintptr_t)&fiber_main; // r13: entry
    w[5] = (uint64_t)(uintptr_t)f;          // r12: argument
    w[6] = 0;                               // rbx
    w[7] = 0;                               // rbp
    w[8] = (uint64_t)(uintptr_t)&pb_emu_fiber_start;
    f->sp = w;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack_lo;
    f->uc.uc_stack.ss_size = f->stack_size;
    f->uc.uc_link = nullptr;
    makecontext(&f->uc, (void (*)())fiber_tramp, 2, (unsigned)((uintptr_t)f >> 32),
                (unsigned)(uintptr_t)f);
#endif
    return f;
}

FiberPool::~FiberPool() {
    for (Fiber *f : all) {
        munmap(f->stack_lo - PAGE, f->stack_size + PAGE);
        delete f;
    }
}

// scheduler -> fiber
void resume(Fiber *f) {
    g_thread = f->thr;
    pb_emu_cur = &f->thr->ctx;
#if PB_EMU_ASAN
    __sanitizer_start_switch_fiber(&g_main_fake, f->stack_lo, f->stack_size);
#endif
#if defined(__x86_64__)
    pb_emu_ctx_switch(&g_main_sp, f->sp);
#else
    swapcontext(&g_main_uc, &f->uc);
#endif
#if PB_EMU_ASAN
    __sanitizer_finish_switch_fiber(g_main_fake, nullptr, nullptr);
#endif
    g_thread = nullptr;
}

// fiber -> scheduler
void yield(Fiber *f) {
#if PB_EMU_ASAN
    __sanitizer_start_switch_fiber(&f->asan_fake, g_main_bottom, g_main_size);
#endif
#if defined(__x86_64__)
    pb_emu_ctx_switch(&f->sp, g_main_sp);
#else
    swapcontext(&f->uc, &g_main_uc);
#endif
#if PB_EMU_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, &g_main_bottom, &g_main_size);
#endif
}

// Each fiber runs threads one after another: a thread that finishes without waiting leaves the
// fiber free for the next thread of the block.
void fiber_main(Fiber *f) {
#if PB_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &g_main_bottom, &g_main_size);
#endif
    for (;;) {
        ThreadRec *t = f->thr;
        g_kernel->job->run_thread();
        t->state = S_DONE;
        t->fiber = nullptr;
        // Fast path: when the next thread of the scheduler's pass has not started, run it here
        // at once (exactly what the scheduler would do next, without two context switches).
        ThreadRec *next = g_pass_k + 1 < g_pass_n ? pass_thread(g_pass_k + 1) : nullptr;
        if (next && next->state == S_NEW) {
            g_pass_k++;
            next->state = S_RUNNABLE;
            next->fiber = f;
            f->thr = next;
            g_thread = next;
            pb_emu_cur = &next->ctx;
            g_threads++;
            continue;
        }
        f->thr = nullptr;
        yield(f);
    }
}

// ----------------------------------------------------------------------------
// Block scheduler

std::string tid_str(const ThreadRec &t) {
    char b[48];
    snprintf(b, sizeof b, "(%u,%u,%u)", t.ctx.tid.x, t.ctx.tid.y, t.ctx.tid.z);
    return b;
}

std::string wait_str(const ThreadRec &t) {
    char b[400];
    switch (t.state) {
    case S_DONE: return "has exited";
    case S_WAIT:
        snprintf(b, sizeof b, "waits at %s (%s:%d)",
                 t.wkind == W_SYNC ? "__syncthreads" : t.wkind == W_SYNCWARP ? "__syncwarp" : "a warp shuffle",
                 t.wfile, t.wline);
        return b;
    default: return "is running";
    }
}

bool same_file(const char *a, const char *b) { return a == b || !strcmp(a, b); }

void complete_warp(int w) {
    const int n = (int)g_threads_v.size();
    ThreadRec *L = &g_threads_v[(size_t)w * 32];
    const ThreadRec &a = L[0];
    for (int l = 1; l < 32; l++) {
        const ThreadRec &b = L[l];
        if (b.wkind != a.wkind || b.wline != a.wline || !same_file(b.wfile, a.wfile) || b.skind != a.skind ||
            b.swidth != a.swidth || b.smask != a.smask)
            die("lanes of warp %d wait at different warp intrinsics: lane 0 %s, lane %d %s (CUDA "
                "requires every lane named in the mask to execute the same intrinsic)",
                w, wait_str(a).c_str(), l, wait_str(b).c_str());
    }
    (void)n;
    if (a.wkind == W_SHFL) {
        for (int l = 0; l < 32; l++) {
            ThreadRec &t = L[l];
            const int wd = t.swidth, base = l & ~(wd - 1), seg = l - base;
            int src = l;
            switch (t.skind) {
            case 0: src = base + (((t.sarg % wd) + wd) % wd); break;           // idx
            case 1: src = seg - t.sarg >= 0 ? l - t.sarg : l; break;            // up
            case 2: src = seg + t.sarg < wd ? l + t.sarg : l; break;            // down
            case 3: src = l ^ t.sarg; if (src >= base + wd || src < 0) src = l; break; // xor
            }
            if (src < 0 || src > 31) src = l;
            t.sres = L[src].sval;
        }
    }
    for (int l = 0; l < 32; l++) L[l].state = S_RUNNABLE;
    g_warp_arrived[(size_t)w] = 0;
}

// Called in a fiber: wait at a warp intrinsic.
uint64_t warp_wait(const char *file, int line, int wkind, int kind, unsigned mask, uint64_t bits,
                   int arg, int width) {
    ThreadRec *t = g_thread;
    if (!t || !g_kernel)
        die("%s used outside a kernel (%s:%d)", wkind == W_SHFL ? "warp shuffle" : "__syncwarp",
            file, line);
    const int n = (int)g_threads_v.size();
    const int w = t->lin / 32;
    const int lanes = n - w * 32 < 32 ? n - w * 32 : 32;
    const char *what = wkind == W_SHFL ? "warp shuffle" : "__syncwarp";
    if (mask != 0xffffffffu)
        die("%s at %s:%d with mask 0x%08x: cudaemu supports only full-warp masks (0xffffffff)",
            what, file, line, mask);
    if (lanes < 32)
        die("%s at %s:%d in a partial warp: warp %d has only %d lanes (block of %d threads is not "
            "a multiple of 32) but the mask names all 32",
            what, file, line, w, lanes, n);
    if (width < 1 || width > 32 || (width & (width - 1)))
        die("%s at %s:%d with width %d (must be a power of two <= 32)", what, file, line, width);
    t->state = S_WAIT;
    t->wkind = wkind;
    t->wfile = file;
    t->wline = line;
    t->skind = kind;
    t->smask = mask;
    t->sval = bits;
    t->sarg = arg;
    t->swidth = width;
    if (++g_warp_arrived[(size_t)w] == 32) complete_warp(w);
    yield(t->fiber);
    return t->sres;
}

// No thread can run: every live thread waits. Release a complete __syncthreads or abort.
void resolve_block() {
    const int n = (int)g_threads_v.size();
    int done = 0, at_sync = 0;
    const ThreadRec *first_sync = nullptr, *first_done = nullptr;
    for (int i = 0; i < n; i++) {
        const ThreadRec &t = g_threads_v[(size_t)i];
        if (t.state == S_DONE) {
            done++;
            if (!first_done) first_done = &t;
        } else if (t.state == S_WAIT && t.wkind == W_SYNC) {
            at_sync++;
            if (!first_sync) first_sync = &t;
        }
    }
    // A warp intrinsic still waiting: some lane of that warp exited or waits elsewhere.
    for (int i = 0; i < n; i++) {
        const ThreadRec &t = g_threads_v[(size_t)i];
        if (t.state == S_WAIT && t.wkind != W_SYNC) {
            const int w = t.lin / 32;
            for (int l = 0; l < 32; l++) {
                const ThreadRec &o = g_threads_v[(size_t)w * 32 + l];
                if (!(o.state == S_WAIT && o.wkind == t.wkind)) {
                    g_thread = const_cast<ThreadRec *>(&t);
                    die("deadlock: lane %d of warp %d %s but lane %d %s (all 32 lanes must reach "
                        "the same warp intrinsic)",
                        t.lin % 32, w, wait_str(t).c_str(), l, wait_str(o).c_str());
                }
            }
        }
    }
    if (at_sync == 0) die("scheduler: no runnable thread and no barrier (internal error)");
    if (done > 0) {
        g_thread = const_cast<ThreadRec *>(first_sync);
        die("__syncthreads at %s:%d reached by %d of %d threads of the block: thread %s exited "
            "without reaching it (divergent barrier: deadlock or undefined behaviour on a GPU)",
            first_sync->wfile, first_sync->wline, at_sync, n, tid_str(*first_done).c_str());
    }
    for (int i = 0; i < n; i++) {
        const ThreadRec &t = g_threads_v[(size_t)i];
        if (t.wline != first_sync->wline || !same_file(t.wfile, first_sync->wfile)) {
            g_thread = const_cast<ThreadRec *>(&t);
            die("threads of one block wait at different __syncthreads: thread %s at %s:%d, "
                "thread %s at %s:%d",
                tid_str(*first_sync).c_str(), first_sync->wfile, first_sync->wline,
                tid_str(t).c_str(), t.wfile, t.wline);
        }
    }
    for (int i = 0; i < n; i++) g_threads_v[(size_t)i].state = S_RUNNABLE;
}

void run_block(KernelOp &K) {
    const int bx = (int)K.block.x, by = (int)K.block.y, bz = (int)K.block.z;
    const int n = bx * by * bz;
    g_threads_v.assign((size_t)n, ThreadRec());
    g_warp_arrived.assign((size_t)(n + 31) / 32, 0);
    for (int i = 0; i < n; i++) {
        ThreadRec &t = g_threads_v[(size_t)i];
        t.lin = i;
        t.ctx.tid = uint3{(unsigned)(i % bx), (unsigned)((i / bx) % by), (unsigned)(i / (bx * by))};
    }
    g_block_shared.clear();
    g_block_shared_bytes = 0;
    if (!g_dyn_shared.empty()) fill_garbage(g_dyn_shared.data(), g_dyn_shared.size());
    for (;;) {
        bool progress = false;
        g_pass_n = n;
        for (g_pass_k = 0; g_pass_k < n; g_pass_k++) {
            ThreadRec &t = *pass_thread(g_pass_k);
            if (t.state == S_NEW) {
                Fiber *f;
                if (g_idle.empty()) f = new_fiber();
                else {
                    f = g_idle.back();
                    g_idle.pop_back();
                }
                f->thr = &t;
                t.fiber = f;
                t.state = S_RUNNABLE;
                g_threads++;
            } else if (t.state != S_RUNNABLE) {
                continue;
            }
            progress = true;
            Fiber *f = t.fiber;
            resume(f); // may run further new threads of this pass (fiber_main), advancing g_pass_k
            if (!f->thr) g_idle.push_back(f);
        }
        if (progress) continue;
        bool all_done = true;
        for (int i = 0; i < n && all_done; i++) all_done = g_threads_v[(size_t)i].state == S_DONE;
        if (all_done) break;
        resolve_block();
    }
}

void KernelOp::run() {
    g_kernel = this;
    g_kernels++;
    pb_emu_blk.bdim = block;
    pb_emu_blk.gdim = grid;
    g_dyn_shared.assign(shmem, 0);
    const unsigned long long nb = (unsigned long long)grid.x * grid.y * grid.z;
    const bool rev = g_order == 1;
    for (unsigned long long i = 0; i < nb; i++) {
        const unsigned long long b = rev ? nb - 1 - i : i;
        cur_block = uint3{(unsigned)(b % grid.x), (unsigned)((b / grid.x) % grid.y),
                          (unsigned)(b / ((unsigned long long)grid.x * grid.y))};
        pb_emu_blk.bid = cur_block;
        run_block(*this);
    }
    g_dyn_shared.clear();
    g_kernel = nullptr;
}

void init_order() {
    if (g_order >= 0) return;
    const char *o = getenv("PB_CUDAEMU_ORDER");
    if (!o || !*o || !strcmp(o, "forward")) g_order = 0;
    else if (!strcmp(o, "reverse")) g_order = 1;
    else die("PB_CUDAEMU_ORDER='%s' is not forward or reverse", o);
}

// ----------------------------------------------------------------------------
// cuBLAS

struct Handle {
    cudaStream_t stream = 0;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
    cublasPointerMode_t pmode = CUBLAS_POINTER_MODE_HOST;
};
std::map<cublasHandle_t, Handle *> g_handles;

Handle *handle_of(cublasHandle_t h) {
    auto it = g_handles.find(h);
    return it == g_handles.end() ? nullptr : it->second;
}

float tf32_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; // Inf / NaN unchanged
    u += 0x0fffu + ((u >> 13) & 1u);                // round to nearest even at bit 13
    u &= ~0x1fffu;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

struct GemmOp final : Op {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc, batch;
    long long sA, sB, sC;
    const float *A, *B;
    float *C;
    float alpha, beta;
    const float *dalpha = nullptr, *dbeta = nullptr; // device pointer mode
    bool tf32;
    void run() override {
        const float al = dalpha ? *dalpha : alpha, be = dbeta ? *dbeta : beta;
        const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
        const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
        std::vector<float> ra, rb;
        for (int i = 0; i < batch; i++) {
            const float *a = A + (ptrdiff_t)(i * sA), *b = B + (ptrdiff_t)(i * sB);
            float *c = C + (ptrdiff_t)(i * sC);
            if (m == 0 || n == 0) continue;
            if (be == 0.0f) // cuBLAS does not read C when beta == 0 (NaN garbage must not leak)
                for (int j = 0; j < n; j++) memset(c + (size_t)j * ldc, 0, (size_t)m * sizeof(float));
            if (k == 0 || al == 0.0f) {
                if (be != 0.0f && be != 1.0f)
                    for (int j = 0; j < n; j++)
                        for (int r = 0; r < m; r++) c[(size_t)j * ldc + r] *= be;
                continue;
            }
            if (tf32) {
                ra.assign((size_t)(ac - 1) * lda + ar, 0.0f);
                rb.assign((size_t)(bc - 1) * ldb + br, 0.0f);
                for (int j = 0; j < ac; j++)
                    for (int r = 0; r < ar; r++)
                        ra[(size_t)j * lda + r] = tf32_round(a[(size_t)j * lda + r]);
                for (int j = 0; j < bc; j++)
                    for (int r = 0; r < br; r++)
                        rb[(size_t)j * ldb + r] = tf32_round(b[(size_t)j * ldb + r]);
                a = ra.data();
                b = rb.data();
            }
            cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, a, lda, b, ldb,
                        be, c, ldc);
        }
    }
};

cublasStatus_t gemm_common(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, long long sA, const float *B, int ldb,
                           long long sB, const float *beta, float *C, int ldc, long long sC,
                           int batch, const char *fn) {
    check_owner();
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    auto bad = [&](const char *why) {
        diag("%s: CUBLAS_STATUS_INVALID_VALUE: %s (m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d)",
             fn, why, m, n, k, lda, ldb, ldc, batch);
        return CUBLAS_STATUS_INVALID_VALUE;
    };
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T && transa != CUBLAS_OP_C) ||
        (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T && transb != CUBLAS_OP_C))
        return bad("unknown operation");
    if (m < 0 || n < 0 || k < 0 || batch < 0) return bad("negative size");
    const int ar = transa == CUBLAS_OP_N ? m : k, ac = transa == CUBLAS_OP_N ? k : m;
    const int br = transb == CUBLAS_OP_N ? k : n, bc = transb == CUBLAS_OP_N ? n : k;
    if (lda < (ar > 1 ? ar : 1)) return bad("lda < max(1, rows of A)");
    if (ldb < (br > 1 ? br : 1)) return bad("ldb < max(1, rows of B)");
    if (ldc < (m > 1 ? m : 1)) return bad("ldc < max(1, m)");
    if (!alpha || !beta) return bad("alpha or beta is NULL");
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    GemmOp *op = new GemmOp;
    if (h->pmode == CUBLAS_POINTER_MODE_DEVICE) {
        if (!find_range(alpha, 4, K_DEVICE) || !find_range(beta, 4, K_DEVICE))
            die("%s in device pointer mode: alpha/beta are not device memory", fn);
        op->dalpha = alpha;
        op->dbeta = beta;
        op->alpha = op->beta = 0.0f;
    } else {
        op->alpha = *alpha;
        op->beta = *beta;
    }
    // Operand ranges (an out-of-range operand is an illegal address on a GPU).
    const bool reads_ab = k > 0 && (h->pmode == CUBLAS_POINTER_MODE_DEVICE || *alpha != 0.0f);
    for (int i = 0; i < batch; i++) {
        struct {
            const void *p;
            size_t n;
            const char *nm;
            bool need;
        } r[3] = {
            {A + (ptrdiff_t)(i * sA), ar && ac ? ((size_t)(ac - 1) * lda + ar) * 4 : 0, "A", reads_ab},
            {B + (ptrdiff_t)(i * sB), br && bc ? ((size_t)(bc - 1) * ldb + br) * 4 : 0, "B", reads_ab},
            {C + (ptrdiff_t)(i * sC), ((size_t)(n - 1) * ldc + m) * 4, "C", true},
        };
        for (auto &x : r)
            if (x.need && !find_range(x.p, x.n, K_DEVICE))
                die("%s: operand %s of batch %d (%d x %d) is not inside a live device allocation: %s",
                    fn, x.nm, i, x.nm[0] == 'A' ? ar : x.nm[0] == 'B' ? br : m,
                    x.nm[0] == 'A' ? ac : x.nm[0] == 'B' ? bc : n, describe_ptr(x.p, x.n).c_str());
    }
    op->file = fn;
    op->ta = transa == CUBLAS_OP_C ? CUBLAS_OP_T : transa; // real: conj-transpose = transpose
    op->tb = transb == CUBLAS_OP_C ? CUBLAS_OP_T : transb;
    op->m = m, op->n = n, op->k = k, op->lda = lda, op->ldb = ldb, op->ldc = ldc;
    op->batch = batch, op->sA = sA, op->sB = sB, op->sC = sC;
    op->A = A, op->B = B, op->C = C;
    op->tf32 = (h->math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH;
    enqueue(h->stream, op);
    return CUBLAS_STATUS_SUCCESS;
}

} // namespace

// ----------------------------------------------------------------------------
// Device-side entry points

pb_emu_thread_ctx *pb_emu_cur = nullptr;
pb_emu_block_ctx pb_emu_blk;

int pb_emu_register_names(const pb_emu_kname *nm, int n, const char *file) {
    (void)file;
    for (int i = 0; i < n; i++) names()[nm[i].fn] = nm[i].name;
    return n;
}

void pb_emu_syncthreads(const char *file, int line) {
    ThreadRec *t = g_thread;
    if (!t || !g_kernel) die("__syncthreads outside a kernel (%s:%d)", file, line);
    t->state = S_WAIT;
    t->wkind = W_SYNC;
    t->wfile = file;
    t->wline = line;
    yield(t->fiber);
}

void pb_emu_syncwarp(const char *file, int line, unsigned mask) {
    warp_wait(file, line, W_SYNCWARP, 0, mask, 0, 0, 32);
}

uint64_t pb_emu_shfl(const char *file, int line, int kind, unsigned mask, uint64_t bits, int arg,
                     int width) {
    return warp_wait(file, line, W_SHFL, kind, mask, bits, arg, width);
}

void pb_emu_shared(void *p, size_t bytes, const char *name) {
    if (!g_kernel) die("__shared__ %s used outside a kernel", name);
    for (auto &s : g_block_shared)
        if (s.first == p) return;
    g_block_shared.emplace_back(p, bytes);
    g_block_shared_bytes += bytes;
    if (g_block_shared_bytes + g_dyn_shared.size() > SHARED_LIMIT)
        die("block uses %zu bytes of shared memory (static %zu + dynamic %zu) > %zu", 
            g_block_shared_bytes + g_dyn_shared.size(), g_block_shared_bytes, g_dyn_shared.size(),
            SHARED_LIMIT);
    fill_garbage(p, bytes); // shared memory is uninitialised at block start
}

void *pb_emu_dyn_shared(void) {
    if (!g_kernel) die("dynamic shared memory used outside a kernel");
    if (g_dyn_shared.empty())
        die("kernel uses extern __shared__ memory but was launched with 0 bytes of it");
    return g_dyn_shared.data();
}

void pb_emu_check_arg(const char *file, int line, pb_emu_fn k, int index, const void *p) {
    check_owner();
    if (find_range(p, 0, K_DEVICE | K_PINNED)) return;
    die("argument %d of kernel %s (launch at %s:%d) is not device memory: %s", index, kname(k),
        file, line, describe_ptr(p, 0).c_str());
}

void pb_emu_submit(const char *file, int line, pb_emu_fn k, dim3 grid, dim3 block, size_t shmem,
                   cudaStream_t stream, pb_emu_job *job) {
    check_owner();
    init_order();
    const char *name = kname(k);
    char why[256] = "";
    cudaError_t err = cudaSuccess;
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z) {
        err = cudaErrorInvalidConfiguration;
        snprintf(why, sizeof why, "zero-sized grid (%u,%u,%u) or block (%u,%u,%u)", grid.x, grid.y,
                 grid.z, block.x, block.y, block.z);
    } else if (block.x > 1024 || block.y > 1024 || block.z > 64 || threads > 1024) {
        err = cudaErrorInvalidConfiguration;
        snprintf(why, sizeof why,
                 "block (%u,%u,%u) = %llu threads exceeds the limits (x,y <= 1024, z <= 64, "
                 "x*y*z <= 1024)",
                 block.x, block.y, block.z, threads);
    } else if (grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u) {
        err = cudaErrorInvalidConfiguration;
        snprintf(why, sizeof why, "grid (%u,%u,%u) exceeds the limits (x < 2^31, y,z <= 65535)",
                 grid.x, grid.y, grid.z);
    } else if (shmem > SHARED_LIMIT) {
        err = cudaErrorInvalidValue;
        snprintf(why, sizeof why, "%zu bytes of dynamic shared memory > %zu", shmem, SHARED_LIMIT);
    } else if (!stream_ok(stream)) {
        err = cudaErrorInvalidResourceHandle;
        snprintf(why, sizeof why, "stream %p is not a live stream", (void *)stream);
    }
    if (err != cudaSuccess) {
        diag("launch of kernel %s at %s:%d failed (%s): %s", name, file, line,
             cudaGetErrorString(err), why);
        delete job;
        if (g_last_error_site) die("an earlier launch error was never checked");
        g_last_error = err;
        g_last_error_site = name;
        return;
    }
    KernelOp *op = new KernelOp;
    op->file = file;
    op->line = line;
    op->k = k;
    op->name = name;
    op->grid = grid;
    op->block = block;
    op->shmem = shmem;
    op->job = job;
    enqueue(stream, op);
}

void pb_cudaemu_set_order(int reverse) { g_order = reverse ? 1 : 0; }
int pb_cudaemu_order(void) {
    init_order();
    return g_order;
}
void pb_cudaemu_stats(unsigned long long *kernels, unsigned long long *threads,
                      unsigned long long *fibers) {
    if (kernels) *kernels = g_kernels;
    if (threads) *threads = g_threads;
    if (fibers) *fibers = g_fibers;
}

// ----------------------------------------------------------------------------
// Runtime API

cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return g_last_error = cudaErrorInvalidValue;
    if (g_devices < 0) {
        const char *d = getenv("PB_CUDAEMU_DEVICES"); // 0: act like a machine without a GPU
        g_devices = d && *d ? atoi(d) : 1;
        if (g_devices < 0) g_devices = 0;
        if (g_devices > 1) g_devices = 1;
    }
    *count = g_devices;
    if (!g_devices) return g_last_error = cudaErrorNoDevice;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    int c = 0;
    if (cudaGetDeviceCount(&c) != cudaSuccess) return g_last_error;
    if (device < 0 || device >= c) return g_last_error = cudaErrorInvalidDevice;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    if (!device) return g_last_error = cudaErrorInvalidValue;
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    int c = 0;
    if (!prop) return g_last_error = cudaErrorInvalidValue;
    if (cudaGetDeviceCount(&c) != cudaSuccess) return g_last_error;
    if (device < 0 || device >= c) return g_last_error = cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "cudaemu (CPU emulation, %s thread order)",
             pb_cudaemu_order() ? "reverse" : "forward");
    prop->totalGlobalMem = (size_t)16 << 30;
    prop->sharedMemPerBlock = SHARED_LIMIT;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024, prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647, prop->maxGridSize[1] = 65535, prop->maxGridSize[2] = 65535;
    prop->major = 8;
    prop->minor = 0;
    prop->multiProcessorCount = 4;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    flush();
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t bytes) { return do_alloc(ptr, bytes, K_DEVICE); }
cudaError_t cudaMallocHost(void **ptr, size_t bytes) { return do_alloc(ptr, bytes, K_PINNED); }

static cudaError_t do_free(void *p, int kind, const char *fn) {
    check_owner();
    if (!p) return cudaSuccess;
    flush(); // cudaFree / cudaFreeHost wait for queued work
    auto it = g_live.find((uintptr_t)p);
    if (it == g_live.end() || it->second.kind != kind) {
        diag("%s(%p): %s", fn, p,
             it != g_live.end() ? "wrong kind of allocation (device vs pinned host)"
                                : find_in(g_freed, (uintptr_t)p) ? "double free"
                                                                 : "not the start of a live allocation");
        return g_last_error = cudaErrorInvalidValue;
    }
    Alloc a = it->second;
    g_live.erase(it);
    raw_free(a);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) { return do_free(p, K_DEVICE, "cudaFree"); }
cudaError_t cudaFreeHost(void *p) { return do_free(p, K_PINNED, "cudaFreeHost"); }

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    check_owner();
    if (!stream_ok(stream)) return g_last_error = cudaErrorInvalidResourceHandle;
    if (n == 0) return cudaSuccess;
    const bool ddev = find_in(g_live, (uintptr_t)dst) && find_in(g_live, (uintptr_t)dst)->kind == K_DEVICE;
    const bool sdev = find_in(g_live, (uintptr_t)src) && find_in(g_live, (uintptr_t)src)->kind == K_DEVICE;
    if (kind == cudaMemcpyDefault)
        kind = sdev ? (ddev ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                    : (ddev ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
    if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
        return g_last_error = cudaErrorInvalidMemcpyDirection;
    const bool want_ddev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool want_sdev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    static const char *const kn[] = {"HostToHost", "HostToDevice", "DeviceToHost", "DeviceToDevice"};
    if (want_ddev && !find_range(dst, n, K_DEVICE)) {
        diag("cudaMemcpyAsync(%s, %zu bytes): destination %s", kn[kind], n, describe_ptr(dst, n).c_str());
        return g_last_error = cudaErrorInvalidValue;
    }
    if (want_sdev && !find_range(src, n, K_DEVICE)) {
        diag("cudaMemcpyAsync(%s, %zu bytes): source %s", kn[kind], n, describe_ptr(src, n).c_str());
        return g_last_error = cudaErrorInvalidValue;
    }
    // Host side: neither device memory (wrong kind) nor freed device memory. Under ASan host
    // malloc may reuse freed device blocks (one heap), and ASan reports a real use after free.
    const bool dfreed = !PB_EMU_ASAN && !want_ddev && !find_in(g_live, (uintptr_t)dst) &&
                        find_in(g_freed, (uintptr_t)dst);
    const bool sfreed = !PB_EMU_ASAN && !want_sdev && !find_in(g_live, (uintptr_t)src) &&
                        find_in(g_freed, (uintptr_t)src);
    if ((!want_ddev && ddev) || (!want_sdev && sdev) || dfreed || sfreed) {
        diag("cudaMemcpyAsync(%s, %zu bytes): %s is %s", kn[kind], n,
             (!want_ddev && ddev) || dfreed ? "destination" : "source",
             (!want_ddev && ddev) || (!want_sdev && sdev) ? "device memory but the kind says host"
                                                          : "freed device memory");
        return g_last_error = cudaErrorInvalidValue;
    }
    if ((uintptr_t)dst < (uintptr_t)src + n && (uintptr_t)src < (uintptr_t)dst + n)
        die("cudaMemcpyAsync(%s): overlapping source and destination [%p,+%zu) [%p,+%zu) "
            "(undefined)", kn[kind], src, n, dst, n);
    const bool dpin = !want_ddev && find_range(dst, n, K_PINNED);
    const bool spin = !want_sdev && find_range(src, n, K_PINNED);
    CopyOp *op = new CopyOp;
    op->dst = dst;
    op->src = src;
    op->n = n;
    if (kind == cudaMemcpyHostToDevice && !spin) // pageable source: staged at the call
        op->staged.assign((const unsigned char *)src, (const unsigned char *)src + n);
    enqueue(stream, op);
    // To pageable host memory (and host to host) the call returns once the copy is done.
    if ((kind == cudaMemcpyDeviceToHost && !dpin) || kind == cudaMemcpyHostToHost) flush();
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, 0);
    if (e == cudaSuccess) flush();
    return e;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t stream) {
    check_owner();
    if (!stream_ok(stream)) return g_last_error = cudaErrorInvalidResourceHandle;
    if (n == 0) return cudaSuccess;
    if (!find_range(dst, n, K_DEVICE)) {
        diag("cudaMemsetAsync(%zu bytes): destination %s", n, describe_ptr(dst, n).c_str());
        return g_last_error = cudaErrorInvalidValue;
    }
    SetOp *op = new SetOp;
    op->dst = dst;
    op->v = value;
    op->n = n;
    enqueue(stream, op);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t n) {
    cudaError_t e = cudaMemsetAsync(dst, value, n, 0);
    if (e == cudaSuccess) flush();
    return e;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    check_owner();
    if (!s || (flags & ~1u)) return g_last_error = cudaErrorInvalidValue;
    *s = (cudaStream_t) new pb_emu_stream_s;
    g_streams[*s] = true;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s) {
    check_owner();
    if (!s || !g_streams.count(s)) return g_last_error = cudaErrorInvalidResourceHandle;
    flush(); // queued work still completes
    g_streams.erase(s);
    delete (pb_emu_stream_s *)s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (!stream_ok(s)) return g_last_error = cudaErrorInvalidResourceHandle;
    flush();
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    g_last_error_site = nullptr;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_last_error; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unknown error";
}

// ----------------------------------------------------------------------------
// cuBLAS API

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    check_owner();
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    // The emulated device is one host thread; OpenBLAS threads would only spin beside it.
    openblas_set_num_threads(1);
    Handle *h = new Handle;
    *handle = (cublasHandle_t)h;
    g_handles[*handle] = h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    flush();
    g_handles.erase(handle);
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream_ok(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    h->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    const int base = (int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base < 0 || base > 3) return CUBLAS_STATUS_INVALID_VALUE;
    h->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->math;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
    Handle *h = handle_of(handle);
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    h->pmode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetVersion(cublasHandle_t handle, int *version) {
    if (!handle_of(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!version) return CUBLAS_STATUS_INVALID_VALUE;
    *version = 0; // "cuBLAS 0": the emulation, not a real library version
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return gemm_common(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc,
                       0, 1, "cublasSgemm");
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount) {
    return gemm_common(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
                       beta, C, ldc, strideC, batchCount, "cublasSgemmStridedBatched");
}
