// 2-D and causal 3-D convolutions through cuDNN (dlopen'ed, kernels/cuda_libs.h): the CUDA
// twins of kernels/cpu/conv2d.c and conv3d.c, plus the handles of a CUDA decode.
// Host code only; the emulated build (VS_CUDA_EMU) has no cuDNN and leaves this file empty.
#ifndef VS_CUDA_EMU
#include "kernels/cuda/common.cuh"

#include <stdio.h>

#include "kernels/cuda_libs.h"

extern "C" int vs_cuda_ctx_init(struct vs_cuda_ctx *ctx, cudaStream_t stream, void *workspace,
                                size_t bytes, char *why, size_t why_len)
{
    const struct vs_cuda_libs *l = vs_cuda_libs();
    *ctx = (struct vs_cuda_ctx){stream, NULL, NULL, workspace, bytes, 0};
    if (!l->gpu_usable) {
        snprintf(why, why_len, "%s", l->why);
        return -1;
    }
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    if (l->dnn.cudnnCreate(&dnn) != CUDNN_STATUS_SUCCESS) {
        snprintf(why, why_len, "cudnnCreate failed (%s)", l->cudnn_from);
        return -1;
    }
    ctx->cudnn = dnn;
    if (l->blas.cublasCreate_v2(&blas) != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, why_len, "cublasCreate failed (%s)", l->cublas_from);
        vs_cuda_ctx_free(ctx);
        return -1;
    }
    ctx->cublas = blas;
    if (l->blas.cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH) != CUBLAS_STATUS_SUCCESS ||
        vs_cuda_ctx_bind(ctx, stream, workspace, bytes)) {
        snprintf(why, why_len, "cannot bind cuDNN/cuBLAS to the stream");
        vs_cuda_ctx_free(ctx);
        return -1;
    }
    return 0;
}

extern "C" int vs_cuda_ctx_bind(struct vs_cuda_ctx *ctx, cudaStream_t stream, void *workspace,
                                size_t bytes)
{
    const struct vs_cuda_libs *l = vs_cuda_libs();
    ctx->stream = stream;
    ctx->workspace = workspace;
    ctx->workspace_bytes = bytes;
    return l->dnn.cudnnSetStream((cudnnHandle_t)ctx->cudnn, stream) != CUDNN_STATUS_SUCCESS ||
                   l->blas.cublasSetStream_v2((cublasHandle_t)ctx->cublas, stream) !=
                       CUBLAS_STATUS_SUCCESS
               ? -1
               : 0;
}

extern "C" void vs_cuda_ctx_free(struct vs_cuda_ctx *ctx)
{
    const struct vs_cuda_libs *l = vs_cuda_libs();
    if (ctx->cudnn)
        l->dnn.cudnnDestroy((cudnnHandle_t)ctx->cudnn);
    if (ctx->cublas)
        l->blas.cublasDestroy_v2((cublasHandle_t)ctx->cublas);
    ctx->cudnn = ctx->cublas = NULL;
}

// One convolution of a window: cin planes of in_h x in_w at `in` (row pitch, plane pitch),
// zero padding pt/pb/pl/pr, k x k kernel `w` [cout][cin][k][k]; out (cout x oh x ow, dense)
// = result (beta 0) or += result (beta 1). No bias.
struct conv_call {
    const float *in;
    int cin, in_h, in_w, pitch;
    size_t plane;
    int pt, pb, pl, pr;
    const float *w;
    int cout, k;
    float *out;
    int oh, ow;
    float beta;
};

struct descs {
    cudnnTensorDescriptor_t x = NULL, y = NULL;
    cudnnFilterDescriptor_t f = NULL;
    cudnnConvolutionDescriptor_t c = NULL;
    const struct vs_cudnn_api *api;
    explicit descs(const struct vs_cudnn_api *a) : api(a) {}
    ~descs()
    {
        if (x)
            api->cudnnDestroyTensorDescriptor(x);
        if (y)
            api->cudnnDestroyTensorDescriptor(y);
        if (f)
            api->cudnnDestroyFilterDescriptor(f);
        if (c)
            api->cudnnDestroyConvolutionDescriptor(c);
    }
};

static size_t round_up(size_t n)
{
    return (n + 255) / 256 * 256;
}

// The larger padding on each axis, so the output is (in + 2P - k + 1): cuDNN's legacy API pads
// symmetrically.
static void sym_dims(const struct conv_call &c, int *ph, int *pw, int *sh, int *sw)
{
    *ph = c.pt > c.pb ? c.pt : c.pb;
    *pw = c.pl > c.pr ? c.pl : c.pr;
    *sh = c.in_h + 2 * *ph - c.k + 1;
    *sw = c.in_w + 2 * *pw - c.k + 1;
}

static size_t crop_bytes(const struct conv_call &c)
{
    int ph, pw, sh, sw;
    sym_dims(c, &ph, &pw, &sh, &sw);
    bool asym = c.pt != c.pb || c.pl != c.pr;
    return asym ? round_up((size_t)c.cout * sh * sw * sizeof(float)) : 0;
}

static int conv_window(const struct conv_call &c, const struct vs_cuda_ctx *ctx)
{
    const struct vs_cudnn_api *api = &vs_cuda_libs()->dnn;
    cudnnHandle_t h = (cudnnHandle_t)ctx->cudnn;
    int ph, pw, sh, sw;
    sym_dims(c, &ph, &pw, &sh, &sw);
    const size_t tmp = crop_bytes(c);
    if (tmp > ctx->workspace_bytes)
        return -1;
    float *y = tmp ? (float *)ctx->workspace : c.out;
    descs d(api);
    if (api->cudnnCreateTensorDescriptor(&d.x) || api->cudnnCreateTensorDescriptor(&d.y) ||
        api->cudnnCreateFilterDescriptor(&d.f) || api->cudnnCreateConvolutionDescriptor(&d.c) ||
        api->cudnnSetTensor4dDescriptorEx(d.x, CUDNN_DATA_FLOAT, 1, c.cin, c.in_h, c.in_w,
                                          (int)(c.cin * c.plane), (int)c.plane, c.pitch, 1) ||
        api->cudnnSetTensor4dDescriptorEx(d.y, CUDNN_DATA_FLOAT, 1, c.cout, sh, sw,
                                          c.cout * sh * sw, sh * sw, sw, 1) ||
        api->cudnnSetFilter4dDescriptor(d.f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, c.cout, c.cin,
                                        c.k, c.k) ||
        api->cudnnSetConvolution2dDescriptor(d.c, ph, pw, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT) ||
        api->cudnnSetConvolutionMathType(d.c, CUDNN_FMA_MATH)) // fp32 FMA, never TF32
        return -1;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int got = 0;
    if (api->cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.f, d.c, d.y, 8, &got, perf))
        return -1;
    const size_t ws_left = ctx->workspace_bytes - tmp;
    int pick = -1;
    for (int i = 0; i < got && pick < 0; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_left &&
            (!ctx->forced_algo || (int)perf[i].algo == ctx->forced_algo - 1))
            pick = i;
    if (pick < 0)
        return -1;
    const float one = 1.0f, zero = 0.0f;
    if (api->cudnnConvolutionForward(h, &one, d.x, c.in, d.f, c.w, d.c, perf[pick].algo,
                                     (char *)ctx->workspace + tmp, ws_left,
                                     tmp ? &zero : &c.beta, d.y, y))
        return -1;
    if (!tmp)
        return 0;
    const int y0 = ph - c.pt, x0 = pw - c.pl; // the wanted output inside the symmetric one
    return c.beta != 0.0f
               ? vs_cuda_add_crop(c.out, c.cout, c.oh, c.ow, y, sh, sw, y0, x0, ctx->stream)
               : vs_cuda_crop(y, c.cout, sh, sw, y0, x0, c.out, c.oh, c.ow, ctx->stream);
}

static int add_bias(float *out, const float *bias, int cout, int oh, int ow,
                    const struct vs_cuda_ctx *ctx)
{
    const struct vs_cudnn_api *api = &vs_cuda_libs()->dnn;
    descs d(api);
    const float one = 1.0f;
    return !bias ? 0
                 : api->cudnnCreateTensorDescriptor(&d.x) || api->cudnnCreateTensorDescriptor(&d.y) ||
                           api->cudnnSetTensor4dDescriptorEx(d.x, CUDNN_DATA_FLOAT, 1, cout, 1, 1,
                                                             cout, 1, 1, 1) ||
                           api->cudnnSetTensor4dDescriptorEx(d.y, CUDNN_DATA_FLOAT, 1, cout, oh, ow,
                                                             cout * oh * ow, oh * ow, ow, 1) ||
                           api->cudnnAddTensor((cudnnHandle_t)ctx->cudnn, &one, d.x, bias, &one,
                                               d.y, out)
                       ? -1
                       : 0;
}

static struct conv_call conv2d_call(const float *in, float *out, const float *weight,
                                    const struct vs_conv2d_geom *g)
{
    return conv_call{in, g->cin, g->in_h, g->in_w, g->in_w, (size_t)g->in_h * g->in_w,
                     g->pad_top, g->pad_bottom, g->pad_left, g->pad_right, weight, g->cout, g->k,
                     out, vs_conv2d_out_h(g), vs_conv2d_out_w(g), 0.0f};
}

extern "C" size_t vs_cuda_conv2d_scratch_bytes(const struct vs_conv2d_geom *g)
{
    return crop_bytes(conv2d_call(NULL, NULL, NULL, g));
}

extern "C" int vs_cuda_conv2d(const float *in, float *out, const float *weight, const float *bias,
                              const struct vs_conv2d_geom *g, const struct vs_cuda_ctx *ctx)
{
    const struct conv_call c = conv2d_call(in, out, weight, g);
    return conv_window(c, ctx) || add_bias(out, bias, c.cout, c.oh, c.ow, ctx) ? -1 : 0;
}

extern "C" int vs_cuda_conv3d_frame(const struct vs_conv3d *cv, const float *tap_weights,
                                    const float *const *in, const struct vs_window *win,
                                    float *out, const struct vs_window *wout,
                                    const struct vs_cuda_ctx *ctx)
{
    const int r = (cv->k - 1) / 2;
    // the input rows/columns the output needs, clipped to the frame; the rest is zero padding
    const int ys = wout->y0 - r > 0 ? wout->y0 - r : 0, xs = wout->x0 - r > 0 ? wout->x0 - r : 0;
    const int ye = wout->y0 + wout->h + r < win->H ? wout->y0 + wout->h + r : win->H;
    const int xe = wout->x0 + wout->w + r < win->W ? wout->x0 + wout->w + r : win->W;
    if (ys < win->y0 || xs < win->x0 || ye > win->y0 + win->h || xe > win->x0 + win->w)
        return -1; // the window does not cover the halo (vs_window_covers)
    const size_t taps = (size_t)cv->out_ch * cv->in_ch * cv->k * cv->k;
    float beta = 0.0f;
    for (int dt = 0; dt < cv->kt; dt++) {
        if (!in[dt])
            continue;
        const struct conv_call c = {
            in[dt] + (size_t)(ys - win->y0) * win->w + (xs - win->x0), cv->in_ch, ye - ys, xe - xs,
            win->w, vs_window_area(win), r - (wout->y0 - ys), wout->y0 + wout->h + r - ye,
            r - (wout->x0 - xs), wout->x0 + wout->w + r - xe, tap_weights + dt * taps, cv->out_ch,
            cv->k, out, wout->h, wout->w, beta};
        if (conv_window(c, ctx))
            return -1;
        beta = 1.0f;
    }
    if (beta == 0.0f && // every tap was causal zero padding: the output is the bias alone
        cudaMemsetAsync(out, 0, (size_t)cv->out_ch * vs_window_area(wout) * sizeof(float),
                        ctx->stream) != cudaSuccess)
        return -1;
    return add_bias(out, cv->bias, cv->out_ch, wout->h, wout->w, ctx);
}
#endif
