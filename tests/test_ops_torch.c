// test_ops_torch.c: engine ops against the real PyTorch / transformers peers (label ref):
// CrossEntropyLoss(label_smoothing=0.1) loss+grad, MSELoss loss+grad, torch.optim.AdamW over 5
// steps with weight decay, F.gelu (exact) fwd+bwd, F.layer_norm fwd+bwd, and transformers'
// get_{constant,linear,cosine}_schedule_with_warmup. Data are generated here, written to a temp
// file, and the peer script (embedded below) writes its results back.
// usage: test_ops_torch PYTHON
// Tolerance: ||ours - torch|| / ||torch|| <= 1e-5 for every tensor; schedules |diff| <= 1e-6.
#include "test_ops_util.h"
#include <unistd.h>

static const char *PY =
    "import sys, numpy as np, torch, torch.nn.functional as F\n"
    "torch.set_num_threads(1)\n"
    "from transformers import get_constant_schedule_with_warmup as gc, get_linear_schedule_with_warmup as gl, get_cosine_schedule_with_warmup as gs\n"
    "a = np.fromfile(sys.argv[1], dtype=np.float32); o = 0\n"
    "def take(n):\n"
    "    global o; r = torch.tensor(a[o:o+n]); o += n; return r\n"
    "lg = take(28).view(4, 7).requires_grad_(); lab = take(4).long()\n"
    "pr = take(15).view(3, 5).requires_grad_(); tg = take(15).view(3, 5)\n"
    "p0 = take(50); gr = take(250).view(5, 50)\n"
    "gx = take(1000).requires_grad_(); gd = take(1000)\n"
    "lx = take(96).view(6, 16).requires_grad_(); lw = take(16).requires_grad_(); lb = take(16).requires_grad_(); ld = take(96).view(6, 16)\n"
    "out = []\n"
    "l = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(lg, lab); l.backward(); out += [l.detach().view(1), lg.grad.view(-1)]\n"
    "m = torch.nn.MSELoss()(pr, tg); m.backward(); out += [m.detach().view(1), pr.grad.view(-1)]\n"
    "p = torch.nn.Parameter(p0.clone()); opt = torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)\n"
    "for s in range(5):\n"
    "    p.grad = gr[s].clone(); opt.step()\n"
    "out += [p.detach().view(-1)]\n"
    "y = F.gelu(gx); y.backward(gd); out += [y.detach(), gx.grad]\n"
    "z = F.layer_norm(lx, (16,), lw, lb, 1e-5); z.backward(ld); out += [z.detach().view(-1), lx.grad.view(-1), lw.grad, lb.grad]\n"
    "steps = [0, 3, 10, 25, 40, 55, 99, 100]\n"
    "for f in (gc, gl, gs):\n"
    "    o2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)\n"
    "    sch = f(o2, 10) if f is gc else f(o2, 10, 100)\n"
    "    out += [torch.tensor([sch.lr_lambdas[0](s) for s in steps], dtype=torch.float32)]\n"
    "torch.cat(out).numpy().astype(np.float32).tofile(sys.argv[2])\n";

static double cmp(const char *name, const float *ours, const float *ref, size_t n, double tol) {
    double *rd = pb_xmalloc(n * sizeof(double));
    t_widen(rd, ref, n);
    double e = t_rel_err(ours, rd, n);
    T_CHECK(e <= tol, "%s: rel err %.3g > %g", name, e, tol);
    printf("  %-22s rel err %.2e\n", name, e);
    free(rd);
    return e;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_ops_torch PYTHON\n");
        return 2;
    }
    char err[256];
    pb_engine *e = pb_engine_init(PB_DEVICE_CPU, 2, err, sizeof err);
    if (!e) { fprintf(stderr, "%s\n", err); return 1; }
    pb_rng r;
    pb_rng_seed(&r, 2024);
    float lg[28], lab[4] = {3, 0, 6, 3}, pr[15], tg[15], p0[50], gr[250], gx[1000], gd[1000], lx[96], lw[16], lb[16], ld[96];
    t_rand_vec(&r, lg, 28, -3, 3); t_rand_vec(&r, pr, 15, -1, 1); t_rand_vec(&r, tg, 15, -1, 1);
    t_rand_vec(&r, p0, 50, -1, 1); t_rand_vec(&r, gr, 250, -1, 1); t_rand_vec(&r, gx, 1000, -6, 6);
    t_rand_vec(&r, gd, 1000, -1, 1); t_rand_vec(&r, lx, 96, -2, 2); t_rand_vec(&r, lw, 16, 0.5f, 1.5f);
    t_rand_vec(&r, lb, 16, -1, 1); t_rand_vec(&r, ld, 96, -1, 1);
    char in[] = "/tmp/pb_ops_torch_in_XXXXXX", outp[] = "/tmp/pb_ops_torch_out_XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(outp);
    PB_CHECK(fi >= 0 && fo >= 0, "mkstemp");
    close(fo);
    FILE *f = fdopen(fi, "wb");
    const float *parts[] = {lg, lab, pr, tg, p0, gr, gx, gd, lx, lw, lb, ld};
    const size_t lens[] = {28, 4, 15, 15, 50, 250, 1000, 1000, 96, 16, 16, 96};
    for (int i = 0; i < 12; i++) fwrite(parts[i], sizeof(float), lens[i], f);
    fclose(f);
    char pyfile[] = "/tmp/pb_ops_torch_py_XXXXXX";
    int fp = mkstemp(pyfile);
    PB_CHECK(fp >= 0, "mkstemp");
    FILE *fpy = fdopen(fp, "w");
    fputs(PY, fpy);
    fclose(fpy);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s %s %s", argv[1], pyfile, in, outp);
    int rc = system(cmd);
    const size_t nref = 1 + 28 + 1 + 15 + 50 + 1000 + 1000 + 96 + 96 + 16 + 16 + 24;
    float *ref = pb_xmalloc(nref * sizeof(float));
    FILE *fr = fopen(outp, "rb");
    size_t got = fr ? fread(ref, sizeof(float), nref, fr) : 0;
    if (fr) fclose(fr);
    unlink(in); unlink(outp); unlink(pyfile);
    if (rc != 0 || got != nref) {
        fprintf(stderr, "peer script failed (rc %d, %zu of %zu values)\n", rc, got, nref);
        return 1;
    }
    const float *R = ref;
    // xent
    {
        int32_t labi[4] = {3, 0, 6, 3}, *dl = pb_alloc_i32(e, 4);
        pb_upload_i32(e, dl, labi, 4);
        float *x = t_to_dev(e, lg, 28), *probs = pb_alloc(e, 28), *g = pb_alloc(e, 28), loss;
        pb_xent_forward(e, probs, &loss, x, dl, 4, 7, 0.1f);
        pb_xent_backward(e, g, probs, dl, 4, 7, 0.1f);
        float *gh = t_to_host(e, g, 28);
        cmp("xent loss (eps=0.1)", &loss, R, 1, 1e-5); R += 1;
        cmp("xent dlogits", gh, R, 28, 1e-5); R += 28;
        pb_free(e, x); pb_free(e, probs); pb_free(e, g); pb_free(e, dl); free(gh);
    }
    // mse
    {
        float *p = t_to_dev(e, pr, 15), *t = t_to_dev(e, tg, 15), *g = pb_alloc(e, 15), loss;
        pb_mse_forward(e, &loss, p, t, 3, 5);
        pb_mse_backward(e, g, p, t, 3, 5);
        float *gh = t_to_host(e, g, 15);
        cmp("mse loss", &loss, R, 1, 1e-5); R += 1;
        cmp("mse dpred", gh, R, 15, 1e-5); R += 15;
        pb_free(e, p); pb_free(e, t); pb_free(e, g); free(gh);
    }
    // adamw
    {
        float *p = t_to_dev(e, p0, 50), *g = pb_alloc(e, 50), *m = pb_alloc(e, 50), *v = pb_alloc(e, 50);
        for (int s = 0; s < 5; s++) {
            pb_upload(e, g, gr + 50 * s, 50);
            pb_adamw_step(e, p, g, m, v, 50, 0.01f, 0.9f, 0.999f, 1e-8f, 0.05f, s + 1);
        }
        float *ph = t_to_host(e, p, 50);
        cmp("adamw p after 5 steps", ph, R, 50, 1e-5); R += 50;
        pb_free(e, p); pb_free(e, g); pb_free(e, m); pb_free(e, v); free(ph);
    }
    // gelu
    {
        float *x = t_to_dev(e, gx, 1000), *d = t_to_dev(e, gd, 1000), *y = pb_alloc(e, 1000), *dx = pb_alloc(e, 1000);
        pb_gelu_forward(e, y, x, 1000);
        pb_gelu_backward(e, dx, d, x, 1000);
        float *yh = t_to_host(e, y, 1000), *dh = t_to_host(e, dx, 1000);
        cmp("gelu", yh, R, 1000, 1e-5); R += 1000;
        cmp("gelu dx", dh, R, 1000, 1e-5); R += 1000;
        pb_free(e, x); pb_free(e, d); pb_free(e, y); pb_free(e, dx); free(yh); free(dh);
    }
    // layernorm
    {
        float *x = t_to_dev(e, lx, 96), *w = t_to_dev(e, lw, 16), *b = t_to_dev(e, lb, 16), *d = t_to_dev(e, ld, 96);
        float *y = pb_alloc(e, 96), *mean = pb_alloc(e, 6), *rstd = pb_alloc(e, 6), *dx = pb_alloc(e, 96);
        float *dw = pb_alloc(e, 16), *db = pb_alloc(e, 16);
        pb_layernorm_forward(e, y, mean, rstd, x, w, b, 6, 16, 1e-5f);
        pb_layernorm_backward(e, dx, dw, db, d, x, w, mean, rstd, 6, 16);
        float *yh = t_to_host(e, y, 96), *dxh = t_to_host(e, dx, 96), *dwh = t_to_host(e, dw, 16), *dbh = t_to_host(e, db, 16);
        cmp("layernorm", yh, R, 96, 1e-5); R += 96;
        cmp("layernorm dx", dxh, R, 96, 1e-5); R += 96;
        cmp("layernorm dw", dwh, R, 16, 1e-5); R += 16;
        cmp("layernorm db", dbh, R, 16, 1e-5); R += 16;
        float *bufs[] = {x, w, b, d, y, mean, rstd, dx, dw, db};
        for (int i = 0; i < 10; i++) pb_free(e, bufs[i]);
        free(yh); free(dxh); free(dwh); free(dbh);
    }
    // schedules
    {
        const int steps[8] = {0, 3, 10, 25, 40, 55, 99, 100};
        const pb_sched_kind kinds[3] = {PB_SCHED_CONSTANT, PB_SCHED_LINEAR, PB_SCHED_COSINE};
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 8; i++, R++) {
                float lr = pb_lr_at(kinds[k], 1.0f, steps[i], 10, 100);
                T_CHECK(fabs(lr - *R) <= 1e-6, "schedule %d step %d: %g vs transformers %g", k, steps[i], lr, *R);
            }
        printf("  schedules: 24 values vs transformers\n");
    }
    free(ref);
    pb_engine_free(e);
    return t_report("test_ops_torch");
}
