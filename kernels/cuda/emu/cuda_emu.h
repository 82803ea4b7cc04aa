/* A CPU emulation of the CUDA execution model, enough to run the decoder's own kernels
 * (the .cu files of kernels/cuda) compiled as C++ by g++ in `make test`, so indexing, bounds and
 * barrier errors show up without a GPU. The GPU stays the judge of correctness and speed.
 *
 * Model:
 * - A launch runs its blocks one after another on the calling thread; the threads of a block
 *   are ucontext fibers scheduled round robin. A fiber runs until it reaches a barrier
 *   (__syncthreads, or a warp shuffle, which synchronises its warp) or returns, so every
 *   thread of a block sees the others' writes made before a barrier, as on a GPU.
 * - `__shared__` variables are function statics: one copy, used by one block at a time (blocks
 *   do not overlap). Dynamic shared memory (extern __shared__) is not supported.
 * - Device memory is host memory: cudaMalloc is malloc, copies are memcpy, streams are ignored
 *   (work completes inside the launch).
 * - A thread that returned no longer counts at its block's and warp's barriers.
 * Not modelled: concurrency between blocks, memory ordering beyond barriers, atomics, timing.
 */
#ifndef VS_CUDA_EMU_H
#define VS_CUDA_EMU_H

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef struct CUstream_st *cudaStream_t;
typedef enum {
    cudaSuccess = 0,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidValue = 1
} cudaError_t;
typedef enum {
    cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
    cudaMemcpyDefault
} cudaMemcpyKind;

namespace vs_emu {

enum { kWarp = 32, kStack = 64 * 1024 };

struct group {
    int size = 0, arrived = 0;
    unsigned gen = 0;
};

struct fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    dim3 idx;
    bool done = false;
};

struct block_run {
    std::function<void()> body;
    std::vector<fiber> fibers;
    ucontext_t sched;
    int current = 0;
    group block;
    std::vector<group> warps;
    std::vector<uint64_t> slots; /* one shuffle value per thread */
};

inline block_run *run = nullptr;
inline dim3 threadIdx_, blockIdx_, blockDim_, gridDim_;

inline void yield()
{
    swapcontext(&run->fibers[run->current].ctx, &run->sched);
}

inline void arrive(group &g)
{
    unsigned gen = g.gen;
    if (++g.arrived >= g.size) {
        g.arrived = 0;
        g.gen++;
        return;
    }
    while (g.gen == gen)
        yield();
}

/* A returning thread leaves its groups; a barrier it was the last one missing opens. */
inline void leave(group &g)
{
    g.size--;
    if (g.arrived && g.arrived >= g.size) {
        g.arrived = 0;
        g.gen++;
    }
}

inline int linear_tid()
{
    return (int)(threadIdx_.x + blockDim_.x * (threadIdx_.y + blockDim_.y * threadIdx_.z));
}

inline void fiber_main()
{
    run->body();
    int t = run->current;
    run->fibers[t].done = true;
    leave(run->block);
    leave(run->warps[t / kWarp]);
}

inline void run_block(block_run &r, dim3 block)
{
    const int n = (int)(block.x * block.y * block.z);
    r.fibers.resize((size_t)n);
    r.block = group{n, 0, 0};
    r.warps.assign((size_t)(n + kWarp - 1) / kWarp, group{});
    for (int t = 0; t < n; t++)
        r.warps[(size_t)t / kWarp].size++;
    r.slots.assign((size_t)n, 0);
    for (int t = 0; t < n; t++) {
        fiber &f = r.fibers[(size_t)t];
        f.done = false;
        f.idx = dim3((unsigned)t % block.x, (unsigned)t / block.x % block.y,
                     (unsigned)t / (block.x * block.y));
        f.stack.resize(kStack);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = &r.sched;
        makecontext(&f.ctx, fiber_main, 0);
    }
    for (int left = n; left > 0;) {
        left = 0;
        for (int t = 0; t < n; t++) {
            if (r.fibers[(size_t)t].done)
                continue;
            r.current = t;
            threadIdx_ = r.fibers[(size_t)t].idx;
            swapcontext(&r.sched, &r.fibers[(size_t)t].ctx);
            left += !r.fibers[(size_t)t].done;
        }
    }
}

inline void launch(dim3 grid, dim3 block, std::function<void()> body)
{
    block_run r;
    r.body = std::move(body);
    block_run *outer = run;
    run = &r;
    gridDim_ = grid;
    blockDim_ = block;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx_ = dim3(x, y, z);
                run_block(r, block);
            }
    run = outer;
}

template <class T> T shuffle(T v, int from_lane_delta, bool xor_mode, int width)
{
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of a value wider than 8 bytes");
    const int t = run->current, lane = t % kWarp, base = t - lane % width;
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    run->slots[(size_t)t] = bits;
    group &w = run->warps[(size_t)t / kWarp];
    arrive(w);
    int src = xor_mode ? base + ((lane % width) ^ from_lane_delta) : t + from_lane_delta;
    T out = v;
    if (src >= base && src < base + width && src < (int)run->fibers.size())
        std::memcpy(&out, &run->slots[(size_t)src], sizeof out);
    arrive(w);
    return out;
}

} // namespace vs_emu

#define threadIdx (vs_emu::threadIdx_)
#define blockIdx (vs_emu::blockIdx_)
#define blockDim (vs_emu::blockDim_)
#define gridDim (vs_emu::gridDim_)
#define warpSize 32

inline void __syncthreads()
{
    vs_emu::arrive(vs_emu::run->block);
}

template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32)
{
    return vs_emu::shuffle(v, (int)delta, false, width);
}

template <class T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32)
{
    return vs_emu::shuffle(v, mask, true, width);
}

inline float __expf(float x)
{
    return std::exp(x);
}

/* IEEE double operations that nvcc never contracts into FMAs; g++ does not contract here either
 * (no FMA in the baseline x86-64 target the emulation builds for). */
inline double __dadd_rn(double a, double b)
{
    return a + b;
}

inline double __dsub_rn(double a, double b)
{
    return a - b;
}

inline double __dmul_rn(double a, double b)
{
    return a * b;
}

inline double __ddiv_rn(double a, double b)
{
    return a / b;
}

inline float rsqrtf(float x)
{
    return 1.0f / std::sqrt(x);
}

template <class T> inline T __ldg(const T *p)
{
    return *p;
}

inline cudaError_t cudaGetLastError()
{
    return cudaSuccess;
}

inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind,
                                   cudaStream_t = nullptr)
{
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
}

inline cudaError_t cudaStreamSynchronize(cudaStream_t)
{
    return cudaSuccess;
}

/* One launch, the same text for nvcc and the emulation (see kernels/cuda/common.cuh). */
#define VS_LAUNCH(kernel, grid, block, smem, stream, ...)                                        \
    do {                                                                                         \
        (void)(smem), (void)(stream);                                                            \
        vs_emu::launch((grid), (block), [&] { kernel(__VA_ARGS__); });                           \
    } while (0)

#endif
