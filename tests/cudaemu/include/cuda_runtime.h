// cuda_runtime.h (cudaemu): a CUDA runtime for running engine/cuda on the CPU in tests.
// Stands in for the toolkit's header when the translated .cu files (tests/cudaemu/translate.py)
// are compiled as C++17 with g++; the implementation is tests/cudaemu/emu.cpp.
//
// Host side: the runtime calls engine/cuda makes (memory, async copies/memsets on streams,
// device query, errors), with the documented semantics: work queued on a stream runs when the
// host synchronises (cudaStreamSynchronize, cudaDeviceSynchronize, cudaFree, a copy to
// pageable host memory), so reading pinned memory before a sync sees stale data as on a GPU.
// Device side: __global__ functions are plain C++ functions; a launch (rewritten by translate.py
// into pb_emu_launch(...)(args)) runs every block one after another and the threads of a block
// as cooperative fibers, so __syncthreads is a block barrier and the warp shuffles exchange
// values between the 32 lanes of a warp. Misuse aborts with the kernel, block and thread.
#ifndef PB_CUDAEMU_RUNTIME_H
#define PB_CUDAEMU_RUNTIME_H

#ifndef __cplusplus
#error "cudaemu's cuda_runtime.h is C++ only (the translated .cu files)"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <tuple>
#include <type_traits>
#include <utility>

// ----------------------------------------------------------------------------
// Types and constants (numeric values as in the CUDA toolkit)

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999
} cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01

typedef struct pb_emu_stream *cudaStream_t;

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

// The subset of the toolkit's struct that callers read.
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major;
    int minor;
    int multiProcessorCount;
};

// ----------------------------------------------------------------------------
// Host API

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize(void);

cudaError_t cudaMalloc(void **ptr, size_t bytes);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMallocHost(void **ptr, size_t bytes);
cudaError_t cudaFreeHost(void *ptr);
template <typename T> static inline cudaError_t cudaMalloc(T **ptr, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void **>(ptr), bytes);
}
template <typename T> static inline cudaError_t cudaMallocHost(T **ptr, size_t bytes) {
    return cudaMallocHost(reinterpret_cast<void **>(ptr), bytes);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemset(void *dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t err);
const char *cudaGetErrorName(cudaError_t err);

// ----------------------------------------------------------------------------
// Emulator controls for tests (not CUDA API).

// Order in which the threads of a block (and the blocks of a grid) run between barriers:
// 0 forward, 1 reverse. Default from PB_CUDAEMU_ORDER=forward|reverse (read at first launch).
void pb_cudaemu_set_order(int reverse);
int pb_cudaemu_order(void);
// Number of kernels run and threads executed since start (for tests and timing notes).
void pb_cudaemu_stats(unsigned long long *kernels, unsigned long long *threads,
                      unsigned long long *fibers);

// ----------------------------------------------------------------------------
// Kernel launch: translate.py rewrites `k<<<grid, block, shmem, stream>>>(args)` into
// `pb_emu_launch(__FILE__, __LINE__, k, grid, block, shmem, stream)(args)`: the arguments are
// converted to the kernel's parameter types at the call, as in a real launch.

typedef void (*pb_emu_fn)(void);

// One launched grid's per-thread work: runs the kernel with the captured arguments.
struct pb_emu_job {
    virtual ~pb_emu_job() {}
    virtual void run_thread() = 0;
};

template <typename... P> struct pb_emu_job_impl final : pb_emu_job {
    void (*k)(P...);
    std::tuple<P...> args;
    pb_emu_job_impl(void (*kk)(P...), P... a) : k(kk), args(a...) {}
    void run_thread() override { std::apply(k, args); }
};

// Implemented in emu.cpp. Validates the configuration (sets cudaErrorInvalidConfiguration
// etc. as the launch error, with a diagnostic naming the kernel) and queues the grid.
void pb_emu_submit(const char *file, int line, pb_emu_fn k, dim3 grid, dim3 block, size_t shmem,
                   cudaStream_t stream, pb_emu_job *job);
// Aborts when a pointer argument does not point into (or one past the end of) a live device or
// pinned host allocation: a kernel must not receive host or freed memory.
void pb_emu_check_arg(const char *file, int line, pb_emu_fn k, int index, const void *p);

template <typename T>
static inline void pb_emu_check_one(const char *file, int line, pb_emu_fn k, int index,
                                    const T &v) {
    if constexpr (std::is_pointer<T>::value)
        if (v) pb_emu_check_arg(file, line, k, index, (const void *)v);
    (void)file, (void)line, (void)k, (void)index, (void)v;
}

template <typename... P> struct pb_emu_launcher {
    const char *file;
    int line;
    void (*k)(P...);
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
    void operator()(P... a) const {
        int i = 0;
        (pb_emu_check_one(file, line, reinterpret_cast<pb_emu_fn>(k), i++, a), ...);
        (void)i;
        pb_emu_submit(file, line, reinterpret_cast<pb_emu_fn>(k), grid, block, shmem, stream,
                      new pb_emu_job_impl<P...>(k, a...));
    }
};

template <typename... P>
static inline pb_emu_launcher<P...> pb_emu_launch(const char *file, int line, void (*k)(P...),
                                                  dim3 grid, dim3 block, size_t shmem = 0,
                                                  cudaStream_t stream = 0) {
    return pb_emu_launcher<P...>{file, line, k, grid, block, shmem, stream};
}

// Kernel names for diagnostics: translate.py appends a table of every __global__ function of
// a translated file.
struct pb_emu_kname {
    pb_emu_fn fn;
    const char *name;
};
int pb_emu_register_names(const pb_emu_kname *names, int n, const char *file);

// ----------------------------------------------------------------------------
// Device side

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
// Static __shared__ arrays are function statics: blocks run one after another, and the threads
// of a block share them. translate.py adds pb_emu_shared(...) after each declaration so the
// storage is filled with garbage at the start of every block (shared memory is uninitialised).
#define __shared__ static
void pb_emu_shared(void *p, size_t bytes, const char *name);
// Dynamic shared memory (`extern __shared__ T name[];`, rewritten by translate.py).
void *pb_emu_dyn_shared(void);

struct pb_emu_thread_ctx {
    uint3 tid;
};
struct pb_emu_block_ctx {
    uint3 bid;
    dim3 bdim, gdim;
};
extern pb_emu_thread_ctx *pb_emu_cur;
extern pb_emu_block_ctx pb_emu_blk;
#define threadIdx (static_cast<const uint3 &>(pb_emu_cur->tid))
#define blockIdx (static_cast<const uint3 &>(pb_emu_blk.bid))
#define blockDim (static_cast<const dim3 &>(pb_emu_blk.bdim))
#define gridDim (static_cast<const dim3 &>(pb_emu_blk.gdim))
static constexpr int warpSize = 32;

// Barriers. The call site (file:line, through GCC's __builtin_FILE/LINE default arguments) is
// recorded: all threads of a block must wait at the same __syncthreads, all lanes of a warp at
// the same warp intrinsic.
void pb_emu_syncthreads(const char *file, int line);
void pb_emu_syncwarp(const char *file, int line, unsigned mask);
static inline void __syncthreads(const char *file = __builtin_FILE(), int line = __builtin_LINE()) {
    pb_emu_syncthreads(file, line);
}
static inline void __syncwarp(unsigned mask = 0xffffffffu, const char *file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
    pb_emu_syncwarp(file, line, mask);
}
static inline void __threadfence(void) {}
static inline void __threadfence_block(void) {}

// kind: 0 idx, 1 up, 2 down, 3 xor. Values travel as 64-bit patterns.
uint64_t pb_emu_shfl(const char *file, int line, int kind, unsigned mask, uint64_t bits, int arg,
                     int width);
template <typename T>
static inline T pb_emu_shfl_t(const char *file, int line, int kind, unsigned mask, T v, int arg,
                              int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle type");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = pb_emu_shfl(file, line, kind, mask, b, arg, width);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
#define PB_EMU_SHFL(fn, kind)                                                                      \
    template <typename T>                                                                          \
    static inline T fn(unsigned mask, T v, int arg, int width = warpSize,                          \
                       const char *file = __builtin_FILE(), int line = __builtin_LINE()) {         \
        return pb_emu_shfl_t(file, line, kind, mask, v, arg, width);                               \
    }
PB_EMU_SHFL(__shfl_sync, 0)
PB_EMU_SHFL(__shfl_up_sync, 1)
PB_EMU_SHFL(__shfl_down_sync, 2)
PB_EMU_SHFL(__shfl_xor_sync, 3)
#undef PB_EMU_SHFL

// Atomics: the threads of the emulated device are fibers on one host thread, switched only at
// barriers, so a plain read-modify-write is atomic.
template <typename T> static inline T atomicCAS(T *p, T cmp, T val) {
    T old = *p;
    if (old == cmp) *p = val;
    return old;
}
template <typename T, typename U> static inline T atomicAdd(T *p, U v) {
    T old = *p;
    *p = old + (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicSub(T *p, U v) {
    T old = *p;
    *p = old - (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicExch(T *p, U v) {
    T old = *p;
    *p = (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicMax(T *p, U v) {
    T old = *p;
    if ((T)v > old) *p = (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicMin(T *p, U v) {
    T old = *p;
    if ((T)v < old) *p = (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicOr(T *p, U v) {
    T old = *p;
    *p = old | (T)v;
    return old;
}
template <typename T, typename U> static inline T atomicAnd(T *p, U v) {
    T old = *p;
    *p = old & (T)v;
    return old;
}

// CUDA's overloaded min/max and a few intrinsics. The fast-math intrinsics map to the
// full-precision functions (cudaemu cannot reproduce their reduced accuracy).
static inline int min(int a, int b) { return a < b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
// (__expf and __logf: glibc declares them, as its full-precision expf/logf.)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
template <typename T> static inline T __ldg(const T *p) { return *p; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }

#endif
