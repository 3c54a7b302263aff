#!/usr/bin/env python3
"""The PyTorch peer for `peftbench bench`: the same HF model, batch, threads and step definition,
on the CPU (default) or the GPU (--device cuda; steps timed between torch.cuda.synchronize() calls;
FP32 unless --tf32, to compare with PB_CUDA_MATH=tf32; --autocast-bf16 runs the forward under
torch.autocast(bfloat16), the nearest PyTorch analogue of PB_CPU_MATH=bf16, which keeps every
non-GEMM op and all storage in FP32 where autocast computes matmul outputs in bf16).

One step = zero_grad + forward + loss + backward + AdamW step (lr 1e-4, wd 0.01), model.train(),
dropout 0 (as peftbench bench). Methods: full, lora / dora (peft LoraConfig r, alpha=r, q+v;
use_dora), vera (peft VeraConfig r, q+v), fourierft (peft FourierFTConfig n_frequency, q+v), head
(backbone under torch.no_grad(), only the classifier trains), svfit (an equivalent PyTorch
parametrisation; SVFit is not in peft). Prints one JSON object.
Run each configuration in its own process (peak RSS is per process).
"""
import argparse, json, resource, statistics, sys, time

import torch

BUILTIN = {
    "vit-b16": dict(arch="vit", hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072, image_size=224, patch_size=16, num_channels=3,
                    layer_norm_eps=1e-12),
    "vit-l16": dict(arch="vit", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                    intermediate_size=4096, image_size=224, patch_size=16, num_channels=3,
                    layer_norm_eps=1e-12),
    "vit-tiny": dict(arch="vit", hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
                     intermediate_size=768, image_size=28, patch_size=4, num_channels=1,
                     layer_norm_eps=1e-12),
    "roberta-base": dict(arch="roberta", hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072, vocab_size=50265,
                         max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                         layer_norm_eps=1e-5),
}


def build(name, num_labels):
    import transformers
    c = dict(BUILTIN[name])
    arch = c.pop("arch")
    common = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=num_labels)
    if arch == "vit":
        cfg = transformers.ViTConfig(**c, **common)
        model = transformers.ViTForImageClassification(cfg)
    else:
        cfg = transformers.RobertaConfig(**c, **common, classifier_dropout=0.0)
        model = transformers.RobertaForSequenceClassification(cfg)
    return arch, cfg, model


class SVFitLinear(torch.nn.Module):
    """W = U diag(s) V^T frozen; trainable d (r): W' = W + U_r diag(s_r * d) V_r^T."""

    def __init__(self, lin, r):
        super().__init__()
        self.base = lin
        for p in self.base.parameters():
            p.requires_grad = False
        with torch.no_grad():
            U, S, Vh = torch.linalg.svd(lin.weight.float(), full_matrices=False)
        self.register_buffer("U", U[:, :r].contiguous())
        self.register_buffer("s", S[:r].contiguous())
        self.register_buffer("Vh", Vh[:r].contiguous())
        self.d = torch.nn.Parameter(torch.zeros(r))

    def forward(self, x):
        return self.base(x) + ((x @ self.Vh.t()) * (self.s * self.d)) @ self.U.t()


def qv_names(model):
    """Names of the query/value projections: transformers 4.x calls them query/value, 5.x ViT
    q_proj/v_proj."""
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    return ["query", "value"] if "query" in names else ["q_proj", "v_proj"]


def svfit_wrap(model, r):
    for p in model.parameters():
        p.requires_grad = False
    for _, mod in list(model.named_modules()):
        for child in qv_names(model):
            lin = getattr(mod, child, None)
            if isinstance(lin, torch.nn.Linear):
                setattr(mod, child, SVFitLinear(lin, r))
    for p in model.classifier.parameters():
        p.requires_grad = True
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vit-tiny")
    ap.add_argument("--method", default="full", choices=["full", "lora", "dora", "vera", "fourierft", "head", "svfit"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--autocast-bf16", action="store_true",
                    help="CPU: forward under torch.autocast(bfloat16) (the peer of PB_CPU_MATH=bf16)")
    ap.add_argument("--rank", type=int, default=None,
                    help="adapter rank / fourierft n_frequency (default: peftbench's: 256 vera, 1000 fourierft, else 8)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-labels", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=0,
                    help="head only: time EPOCHS passes over --steps batches (backbone forward each time)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    arch, cfg, model = build(a.model, a.num_labels)
    if a.rank is None:
        a.rank = {"vera": 256, "fourierft": 1000}.get(a.method, 8)
    if a.method in ("lora", "dora"):
        import peft
        lc = peft.LoraConfig(r=a.rank, lora_alpha=a.rank, target_modules=qv_names(model),
                             lora_dropout=0.0, modules_to_save=["classifier"], use_dora=a.method == "dora")
        model = peft.get_peft_model(model, lc)
    elif a.method == "vera":
        import peft
        vc = peft.VeraConfig(r=a.rank, target_modules=qv_names(model), modules_to_save=["classifier"])
        model = peft.get_peft_model(model, vc)
    elif a.method == "fourierft":
        import peft
        fc = peft.FourierFTConfig(n_frequency=a.rank, target_modules=qv_names(model), modules_to_save=["classifier"])
        model = peft.get_peft_model(model, fc)
    elif a.method == "svfit":
        # SVFit (Sun et al. 2024) is not in peft: its trainable part is a per-singular-value
        # scale on the top-r singular triplets of W (W = U diag(s) V^T fixed). The peer trains
        # an equivalent parametrisation: y = x W_res^T + ((x V_r) * (s_r * (1 + d))) U_r^T, with
        # d (r) trainable per adapted matrix (query and value), classifier trained.
        model = svfit_wrap(model, a.rank)
    elif a.method == "head":
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("classifier")
    model.to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    B = a.batch
    if arch == "vit":
        x = (torch.rand(B, cfg.num_channels, cfg.image_size, cfg.image_size) * 2 - 1).to(dev)
        inputs = dict(pixel_values=x)
    else:
        ids = torch.randint(3, cfg.vocab_size, (B, a.seq))
        ids[:, 0] = 0
        ids = ids.to(dev)
        inputs = dict(input_ids=ids, attention_mask=torch.ones_like(ids))
    labels = torch.randint(0, a.num_labels, (B,)).to(dev)
    times = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if a.method == "head":
            base = model.vit if arch == "vit" else model.roberta
            with torch.no_grad():
                h = base(**inputs).last_hidden_state
            if arch == "vit":
                logits = model.classifier(h[:, 0, :])
            else:
                logits = model.classifier(h)
            loss = torch.nn.functional.cross_entropy(logits, labels)
        else:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.autocast_bf16):
                out = model(**inputs, labels=labels)
            loss = out.loss
        loss.backward()
        opt.step()
        sync()
        dt = time.perf_counter() - t0
        if s >= a.warmup:
            times.append(dt)
    step = statistics.median(times)
    throughput = B / step
    if a.epochs > 0:
        # The peer has no feature cache: each epoch runs the frozen backbone again.
        assert a.method == "head", "--epochs applies to --method head"
        sync()
        t0 = time.perf_counter()
        for _ in range(a.epochs * a.steps):
            opt.zero_grad(set_to_none=True)
            base = model.vit if arch == "vit" else model.roberta
            with torch.no_grad():
                h = base(**inputs).last_hidden_state
            logits = model.classifier(h[:, 0, :]) if arch == "vit" else model.classifier(h)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            opt.step()
        sync()
        throughput = a.epochs * a.steps * B / (time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    gpu_mem = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else 0.0
    print(json.dumps(dict(peer="torch", torch=torch.__version__, model=a.model, method=a.method,
                          batch=B, threads=a.threads, step_s=step, throughput=throughput, epochs=a.epochs,
                          peak_rss_gib=rss, device=a.device, tf32=a.tf32, autocast_bf16=a.autocast_bf16,
                          peak_gpu_gib=gpu_mem,
                          params_trainable=sum(p.numel() for p in params),
                          final_loss=loss.item())))


if __name__ == "__main__":
    sys.exit(main())
