#!/usr/bin/env python3
"""Cross-check of peftbench's AdaLoRA against PyPI peft's AdaLoraConfig / AdaLoraModel /
RankAllocator, step by step through a schedule that masks.

Models: ref_methods' random tiny ViT and RoBERTa (2 layers). For each case:
  own init   peftbench's own AdaLoRA init: E = 0 (step-0 logits = base model), A, B ~ N(0, 0.02^2)
             (std within 20 %), trace's loss = cross-entropy + 0.5 x peft's orth regulariser.
  training   peft's adapter with random E loaded into peftbench (trace --params). Both run STEPS
             AdamW steps with the order of peft's docstring: forward (the loss includes
             orth_reg_weight x regulariser, as AdaLoraModel.forward adds it), backward,
             optimizer.step(), update_and_allocate(step), zero_grad (the loss from
             pm.base_model(..., labels=...), i.e. AdaLoraModel.forward). init_r 4, target_r 2,
             tinit 2, tfinal 3, deltaT 2, total_step 10: steps 4 and 6 mask on the cubic budget,
             step 7 (= total_step - tfinal) forces the final pattern, steps 8, 9 re-apply it. Compared
             after every step (trace --dump-steps): the loss, every gradient, every parameter, and
             the set of masked E entries exactly (E == 0 on both sides); the final rank pattern
             (peft's config.rank_pattern) vs peftbench's zero E entries; final logits; merge
             (trace --save) vs unmerged logits and transformers' from_pretrained of the save.
  export     peftbench's --peft-export (ADALORA, lora_A/lora_E/lora_B cut to the rank pattern,
             rank_pattern in the config) loaded with peft.PeftModel.from_pretrained: its logits vs
             peftbench's final logits.
Relative errors ||a-b||/||b||, tolerance 1e-4 (1e-5 for identities). Exit status 1 on a failure.

usage: ref_adalora.py PEFTBENCH [--keep DIR] [--device cpu|cuda]
  --device cuda runs every trace on the CUDA backend (a GPU, or tests/peftbench_emu on the CPU
  emulator of docs/cuda.md) at the same tolerances.
"""
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_methods as rm  # noqa: E402  (Case, names, helpers, the tiny models)
from ref_methods import TOL, TOL_ID, Case, check, failures, log, module_paths, no_decay, pb_key, rel  # noqa: E402

from peft import AdaLoraConfig, PeftModel, get_peft_model  # noqa: E402

STEPS, LR, WD = 10, 2e-3, 0.01
SCHED = dict(init_r=4, target_r=2, tinit=2, tfinal=3, deltaT=2, total_step=STEPS, lora_alpha=8.0,
             orth_reg_weight=0.5, beta1=0.85, beta2=0.85)

torch.set_num_threads(2)


def pb_args(roles, extra=()):
    a = ["--method", "adalora", "--targets", ",".join(roles)]
    for k, v in SCHED.items():
        a += ["--opt", f"{'alpha' if k == 'lora_alpha' else k}={v}"]
    return a + list(extra)


def trace(case, tag, args, steps, save=False, export=None):
    out = os.path.join(case.tmp, f"{case.name}.{tag}.trace.safetensors")
    cmd = [rm.PB, "trace", "--model", case.mdir, "--batch", case.bpath, "--out", out, "--threads", "2",
           "--lr", str(LR), "--wd", str(WD), "--steps", str(steps)] + args + rm.DEVICE
    sdir = os.path.join(case.tmp, f"{case.name}.{tag}.saved") if save else None
    if sdir:
        cmd += ["--save", sdir]
    if export:
        cmd += ["--peft-export", export]
    rm.run(cmd)
    from safetensors.torch import load_file
    return load_file(out), sdir


def test_adalora(case, tag, roles):
    name = f"{case.name}/{tag}"
    paths = module_paths(case.arch, case.layers, roles)
    # own init
    own, _ = trace(case, tag + "-own", pb_args(roles), 0)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    for _, hub in paths:
        E, A, B = own[f"init.{hub}.lora_E"], own[f"init.{hub}.lora_A"], own[f"init.{hub}.lora_B"]
        if E.shape != (SCHED["init_r"], 1) or not torch.equal(E, torch.zeros_like(E)):
            failures.append(f"{name}: {hub}: own init E is not zeros [{SCHED['init_r']}, 1]")
        for leaf, t in (("A", A), ("B", B)):
            if abs(t.std().item() - 0.02) > 0.004:
                failures.append(f"{name}: {hub}: own init {leaf} std {t.std().item():.4f}, expected 0.02")
    # peft's orth term on peftbench's own init: trace's loss = CE + 0.5 * regulariser
    reg = 0.0
    for _, hub in paths:
        A, B = own[f"init.{hub}.lora_A"], own[f"init.{hub}.lora_B"]
        reg += torch.linalg.norm(A @ A.T - torch.eye(A.shape[0])) + torch.linalg.norm(B.T @ B - torch.eye(B.shape[1]))
    ce = rm.loss_fn(case.base_logits, case.labels, case.nl)
    w["own_loss"] = check(name, "own init: loss = CE + orth", rel(own["loss"], (ce + 0.5 * reg / (2 * len(paths))).reshape(1)), TOL)

    # peft model, random E (and fresh A, B) loaded into peftbench
    cfg = AdaLoraConfig(target_modules=[p for p, _ in paths], modules_to_save=["classifier"], lora_dropout=0.0, **SCHED)
    pm = get_peft_model(case.fresh(), cfg)
    g = torch.Generator().manual_seed(case.c["seed"] + 300)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_E" in n:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "lora_A" in n or "lora_B" in n:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    params = {pb_key(n): p for n, p in pm.named_parameters() if p.requires_grad}
    ppath = os.path.join(case.tmp, f"{case.name}.{tag}.params.safetensors")
    save_file({k: v.detach().contiguous() for k, v in params.items()}, ppath)
    edir = os.path.join(case.tmp, f"{case.name}.{tag}.peft")
    got, sdir = trace(case, tag, pb_args(roles, ["--params", ppath, "--dump-steps"]), STEPS, save=True, export=edir)

    keys = {k[len("step.0.grad."):] for k in got if k.startswith("step.0.grad.")}
    if keys != set(params):
        failures.append(f"{name}: trainable tensors differ: only peftbench {sorted(keys - set(params))}, "
                        f"only reference {sorted(set(params) - keys)}")
        return
    dec = [p for k, p in params.items() if not no_decay(k)]
    nod = [p for k, p in params.items() if no_decay(k)]
    opt = torch.optim.AdamW([{"params": dec, "weight_decay": WD}, {"params": nod, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    lm = gm = pmx = 0.0
    masked_steps = []
    for s in range(STEPS):
        opt.zero_grad()
        # AdaLoraModel.forward adds the orth term (PeftModel.forward without a task_type would call
        # the transformers model directly and skip it; SEQ_CLS goes through base_model as here)
        out = pm.base_model(**case.inputs, labels=case.labels)
        lm = max(lm, check(name, f"loss.{s}", rel(got[f"loss.{s}"], out.loss.reshape(1)), TOL))
        if s == 0:
            w["logits"] = check(name, "logits", rel(got["logits"], out.logits), TOL)
        out.loss.backward()
        for k, p in params.items():
            gm = max(gm, check(name, f"step {s} grad.{k}", rel(got[f"step.{s}.grad.{k}"], p.grad), TOL))
        opt.step()
        pm.base_model.update_and_allocate(s)
        nz = 0
        for k, p in params.items():
            a = got[f"step.{s}.param.{k}"]
            pmx = max(pmx, check(name, f"step {s} param.{k}", rel(a, p), TOL))
            if k.endswith(".lora_E"):
                if not torch.equal(a == 0, p.detach() == 0):
                    failures.append(f"{name}: step {s}: masked entries of {k} differ: peftbench "
                                    f"{(a == 0).flatten().tolist()}, peft {(p == 0).flatten().tolist()}")
                nz += int((p == 0).sum())
        masked_steps.append(nz)
    w.update(loss_steps=lm, grad=gm, param=pmx)
    # the schedule really masked: steps 4, 6 on the cubic budget (16 triplets: 7 then 8 masked),
    # 7 the final pattern (target budget), re-applied at 8, 9; in between AdamW moves E off 0
    ntrip = SCHED["init_r"] * len(paths)
    final_kept = SCHED["target_r"] * len(paths)
    if not (masked_steps[4] > 0 and masked_steps[3] == 0 and ntrip - masked_steps[-1] == final_kept):
        failures.append(f"{name}: masked E entries per step {masked_steps}: the schedule did not mask to the target")
    rp = pm.peft_config["default"].rank_pattern
    kept = 0
    for n, bits in rp.items():
        k = pb_key(n)
        mine = (got[f"step.{STEPS - 1}.param.{k}"].flatten() != 0).tolist()
        kept += sum(bits)
        if mine != list(bits):
            failures.append(f"{name}: rank pattern of {k}: peftbench {mine}, peft {list(bits)}")
    print(f"{name}: masked E entries after each step {masked_steps}; final ranks "
          f"{[sum(b) for b in rp.values()]} ({kept} of {ntrip} triplets kept, target {final_kept})")
    with torch.no_grad():
        final = pm(**case.inputs).logits
    w["logits_final"] = check(name, "logits.final", rel(got["logits.final"], final), TOL)
    # merge == unmerged, and the merged save loads in transformers
    rm.check_merged(case, tag, got, sdir, w)
    # export: peft loads peftbench's directory (rank pattern applied) and computes the same
    loaded = PeftModel.from_pretrained(case.fresh(), edir)
    loaded.eval()
    lcfg = loaded.peft_config["default"]
    if lcfg.peft_type.value != "ADALORA" if hasattr(lcfg.peft_type, "value") else lcfg.peft_type != "ADALORA":
        failures.append(f"{name}: export loads as {lcfg.peft_type}")
    with torch.no_grad():
        w["export"] = check(name, "PeftModel.from_pretrained(export) logits", rel(loaded(**case.inputs).logits,
                                                                                  got["logits.final"]), TOL)
    log(case, tag, w)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    rm.PB = sys.argv[1]
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    if "--device" in sys.argv:
        rm.DEVICE = ["--device", sys.argv[sys.argv.index("--device") + 1]]
    why = rm.device_missing(rm.PB, rm.DEVICE[1])
    if why:
        print(f"SKIP ref_adalora.py --device {rm.DEVICE[1]}: {why}")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        vit, rob = Case(tmp, rm.VIT), Case(tmp, rm.ROB)
        for case, tag, roles in ((vit, "adalora-qv", ["query", "value"]),
                                 (rob, "adalora-q,k,int", ["query", "key", "intermediate"])):
            try:
                test_adalora(case, tag, roles)
            except Exception as ex:  # report and go on
                import traceback
                traceback.print_exc()
                failures.append(f"{case.name}/{tag}: {ex}")
    for f in failures:
        print("FAIL", f)
    print(f"tolerances: {TOL:.0e} (peer comparisons), {TOL_ID:.0e} (identities); {len(rm.report)} cases, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
