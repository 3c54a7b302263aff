#!/usr/bin/env python3
"""Cross-checks of peftbench's safetensors and config.json code against the real peers.

  st_fixtures.py safetensors TEST_SAFETENSORS_BIN WORKDIR
      1. files written by the `safetensors` package (torch F32/F16/BF16/F64/ints/bool, metadata),
         and by transformers' save_pretrained (F32 and BF16), are read by peftbench and compared
         bitwise against torch's own float32 (int32) conversion;
      2. peftbench's writer output is loaded by safetensors.safe_open / load_file and compared
         with the values the C side wrote.
  st_fixtures.py config TEST_CONFIG_BIN WORKDIR
      1. config.json files written by transformers (ViTConfig / RobertaConfig save_pretrained) are
         read by peftbench; every field must match;
      2. peftbench's config.json loads in AutoConfig with the same values, and the task models
         build from it, load weights with from_pretrained (no missing/unexpected keys) and run.
Exits non-zero on any mismatch.
"""
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import torch

torch.set_num_threads(2)
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)


def run(cmd, echo=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if echo:
        sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
    return r


# ----------------------------------------------------------------------------
# safetensors

def as_expected(t):
    """torch's own conversion: float32 for floating dtypes, int32 for integer/bool dtypes."""
    if t.dtype.is_floating_point:
        return t.to(torch.float32).contiguous()
    return t.to(torch.int32).contiguous()


def st_python_to_c(binary, work):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1234)
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1.0, -2.5])
    f16 = torch.cat([torch.randn(20, generator=g) * 100, special,
                     torch.tensor([6e-8, -6e-8, 3e-5, 65504.0, 1e-4])]).to(torch.float16)
    # every bit pattern of half / bfloat16: the conversions must be exact for all 65536
    all16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    tensors = {
        "f32.weight": torch.randn(3, 4, generator=g),
        "f32.special": special.clone(),
        "f16.mixed": f16.reshape(4, 8),
        "f16.all_bits": all16.view(torch.float16).clone(),
        "bf16.mixed": (torch.randn(2, 3, 5, generator=g) * 1e3).to(torch.bfloat16),
        "bf16.special": special.to(torch.bfloat16),
        "bf16.all_bits": all16.view(torch.bfloat16).clone(),
        "f64.v": torch.randn(7, generator=g, dtype=torch.float64) * 1e10,
        "i64.ids": torch.tensor([[0, 1, -7], [2**31 - 1, -2**31, 5]], dtype=torch.int64),
        "i32.ids": torch.tensor([3, -4, 2**31 - 1], dtype=torch.int32),
        "i16.v": torch.tensor([-32768, 32767, 0], dtype=torch.int16),
        "i8.v": torch.tensor([-128, 127, 1], dtype=torch.int8),
        "u8.v": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool.mask": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(2.75),
        "empty": torch.zeros(0, 3, dtype=torch.float16),
    }
    meta = {"format": "pt", "note": "caf\u00e9 \"quoted\" \\ back"}
    a = os.path.join(work, "py_a.safetensors")
    b = os.path.join(work, "py_b.safetensors")
    save_file(tensors, a, metadata=meta)
    save_file({k: as_expected(v) for k, v in tensors.items()}, b, metadata=meta)
    print("python-written file (%d tensors, F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL):"
          % len(tensors))
    r = run([binary, "--compare", a, b])
    check(r.returncode == 0, "peftbench read of safetensors-written file differs")

    # transformers' save_pretrained output (a tiny ViT), F32 and BF16
    from transformers import ViTConfig, ViTForImageClassification
    from safetensors import safe_open

    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, image_size=16, patch_size=4, num_channels=3,
                    num_labels=3)
    model = ViTForImageClassification(cfg).eval()
    for dt in (torch.float32, torch.bfloat16):
        d = os.path.join(work, "hf_vit_%s" % str(dt).split(".")[-1])
        model.to(dt).save_pretrained(d)
        fa = os.path.join(d, "model.safetensors")
        with safe_open(fa, "pt") as f:
            exp = {k: as_expected(f.get_tensor(k)) for k in f.keys()}
            md = f.metadata()
        fb = os.path.join(work, "hf_expected.safetensors")
        save_file(exp, fb, metadata=md)
        print("transformers save_pretrained, %s (%d tensors):" % (dt, len(exp)))
        r = run([binary, "--compare", fa, fb])
        check(r.returncode == 0, "peftbench read of transformers %s checkpoint differs" % dt)


def st_c_to_python(binary, work):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out = os.path.join(work, "c_written.safetensors")
    r = run([binary, "--write", out])
    check(r.returncode == 0, "C writer failed")
    if r.returncode != 0:
        return
    i = np.arange(15, dtype=np.int64)
    want = {
        "z.weight": (((i % 251) - 125).astype(np.float32) / np.float32(64)).reshape(3, 5),
        "a.bias": np.float32(0.25) * np.arange(7, dtype=np.float32) - np.float32(1),
        "n\u00e4me \"q\"": np.float32(0.25) * np.arange(7, dtype=np.float32) - np.float32(1),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "ids": (np.arange(6, dtype=np.int32) * 1000 - 2500).reshape(2, 3),
        "special": np.array([np.inf, -np.inf, -0.0, 1e-45, np.nan], dtype=np.float32),
    }
    with safe_open(out, "pt") as f:
        keys = sorted(f.keys())
        check(keys == sorted(want), "keys %s" % keys)
        md = f.metadata()
        check(md == {"format": "pt", "peftbench": "1", "quote": "a\"b\\c\nd"}, "metadata %r" % md)
        for k, w in want.items():
            if k not in keys:
                continue
            t = f.get_tensor(k)
            check(t.dtype == (torch.int32 if w.dtype == np.int32 else torch.float32),
                  "%s dtype %s" % (k, t.dtype))
            check(tuple(t.shape) == w.shape, "%s shape %s vs %s" % (k, tuple(t.shape), w.shape))
            got = t.numpy()
            same = got.tobytes() == w.tobytes() or (
                got.shape == w.shape and np.array_equal(got, w, equal_nan=True)
                and np.array_equal(np.signbit(got), np.signbit(w)))
            check(same, "%s values %r vs %r" % (k, got, w))
    sd = load_file(out)
    check(len(sd) == len(want), "load_file")
    # raw layout: 8-byte aligned data, metadata first, tensors in name order with tiled offsets
    raw = open(out, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    check(n % 8 == 0, "header length %d not a multiple of 8" % n)
    hdr_text = raw[8:8 + n].decode("utf-8")
    check(hdr_text == hdr_text.rstrip(" ") + " " * (len(hdr_text) - len(hdr_text.rstrip(" "))),
          "padding")
    pairs = json.loads(hdr_text, object_pairs_hook=lambda p: p)
    names = [k for k, _ in pairs]
    check(names[0] == "__metadata__", "metadata not first")
    check(names[1:] == sorted(names[1:]), "tensors not sorted by name: %s" % names[1:])
    end = 0
    for k, v in pairs[1:]:
        v = dict(v)
        check(v["data_offsets"][0] == end, "%s offsets not tiled" % k)
        end = v["data_offsets"][1]
    check(8 + n + end == len(raw), "file size")
    print("peftbench-written file: loaded by safe_open/load_file, %d tensors, header %d bytes: ok"
          % (len(want), n))


# ----------------------------------------------------------------------------
# config.json

def dump_config(binary, path):
    r = run([binary, "--dump", path], echo=False)
    if r.returncode != 0:
        return None
    return dict(line.split("=", 1) for line in r.stdout.strip().splitlines())


def f32(x):
    return float(np.float32(x))


def expected_fields(c):
    vit = c.model_type == "vit"
    e = {
        "arch": c.model_type,
        "hidden": c.hidden_size, "layers": c.num_hidden_layers, "heads": c.num_attention_heads,
        "intermediate": c.intermediate_size, "ln_eps": f32(c.layer_norm_eps),
        "hidden_dropout": f32(c.hidden_dropout_prob),
        "attn_dropout": f32(c.attention_probs_dropout_prob),
        "num_labels": c.num_labels, "initializer_range": f32(c.initializer_range),
    }
    if vit:
        e.update(image_size=c.image_size, patch_size=c.patch_size, channels=c.num_channels,
                 qkv_bias=int(bool(c.qkv_bias)))
    else:
        e.update(vocab_size=c.vocab_size, max_positions=c.max_position_embeddings,
                 type_vocab=c.type_vocab_size, pad_id=c.pad_token_id,
                 classifier_dropout=-1.0 if c.classifier_dropout is None
                 else f32(c.classifier_dropout))
    return e


def compare_fields(tag, got, c):
    for k, v in expected_fields(c).items():
        if isinstance(v, float):
            ok = f32(float(got[k])) == v
        elif isinstance(v, str):
            ok = got[k] == v
        else:
            ok = int(got[k]) == v
        check(ok, "%s: field %s = %s, transformers has %r" % (tag, k, got.get(k), v))


def cfg_python_to_c(binary, work):
    from transformers import RobertaConfig, ViTConfig, ViTForImageClassification

    cases = [
        ("ViTConfig()", ViTConfig()),
        ("ViTConfig(small, eps 1e-6, 7 labels, no qkv bias)",
         ViTConfig(hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
                   intermediate_size=768, image_size=28, patch_size=4, num_channels=1,
                   layer_norm_eps=1e-6, num_labels=7, qkv_bias=False, hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.05, initializer_range=0.05)),
        ("RobertaConfig()", RobertaConfig()),
        ("RobertaConfig(roberta-base values, 3 labels)",
         RobertaConfig(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                       layer_norm_eps=1e-5, num_labels=3)),
        ("RobertaConfig(tiny, regression, classifier_dropout 0.2)",
         RobertaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=128, max_position_embeddings=130,
                       type_vocab_size=1, layer_norm_eps=1e-5, num_labels=1,
                       classifier_dropout=0.2, pad_token_id=1)),
    ]
    for i, (tag, c) in enumerate(cases):
        d = os.path.join(work, "pycfg%d" % i)
        c.save_pretrained(d)
        got = dump_config(binary, os.path.join(d, "config.json"))
        check(got is not None, "%s: peftbench could not read transformers' config.json" % tag)
        if got is not None:
            compare_fields(tag, got, c)
            print("transformers %s -> peftbench: %d fields match" % (tag, len(expected_fields(c))))
    # a model's save_pretrained (architectures, dtype keys present)
    c = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, image_size=8, patch_size=4, num_labels=4)
    d = os.path.join(work, "pymodel")
    ViTForImageClassification(c).save_pretrained(d)
    got = dump_config(binary, os.path.join(d, "config.json"))
    check(got is not None, "model save_pretrained config unreadable")
    if got is not None:
        compare_fields("ViTForImageClassification.save_pretrained", got, c)


def cfg_c_to_python(binary, work):
    from safetensors.torch import save_file
    from transformers import (AutoConfig, AutoModelForImageClassification,
                              AutoModelForSequenceClassification, RobertaConfig, ViTConfig)

    for name in ["vit-b16", "vit-l16", "vit-tiny", "roberta-base", "roberta-large",
                 "roberta-tiny"]:
        for labels in (1, 5):
            d = os.path.join(work, "c_%s_%d" % (name, labels))
            os.makedirs(d, exist_ok=True)
            r = run([binary, "--write", name, str(labels), os.path.join(d, "config.json")])
            check(r.returncode == 0, "C config writer failed for %s" % name)
            if r.returncode != 0:
                continue
            c = AutoConfig.from_pretrained(d)
            vit = name.startswith("vit")
            check(isinstance(c, ViTConfig if vit else RobertaConfig), "%s: class %s" %
                  (name, type(c).__name__))
            got = dump_config(binary, os.path.join(d, "config.json"))
            compare_fields("peftbench %s/%d -> AutoConfig" % (name, labels), got, c)
            check(c.num_labels == labels, "%s num_labels %d" % (name, c.num_labels))
            check(c.problem_type == ("regression" if labels == 1 else
                                     "single_label_classification"),
                  "%s problem_type %s" % (name, c.problem_type))
            check(c.architectures == ["ViTForImageClassification" if vit else
                                      "RobertaForSequenceClassification"], "architectures")
            if not vit:
                check(c.bos_token_id == 0 and c.eos_token_id == 2 and c.pad_token_id == 1,
                      "roberta special ids")
                check(c.layer_norm_eps == 1e-5, "roberta eps written as %r" % c.layer_norm_eps)
            else:
                check(c.layer_norm_eps == 1e-12, "vit eps written as %r" % c.layer_norm_eps)
            # the tiny ones: build, save weights next to our config, from_pretrained, run
            if name.endswith("tiny"):
                auto = AutoModelForImageClassification if vit else \
                    AutoModelForSequenceClassification
                torch.manual_seed(0)
                m = auto.from_config(c).eval()
                sd = {k: v.contiguous().clone() for k, v in m.state_dict().items()}
                save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
                m2, info = auto.from_pretrained(d, output_loading_info=True)
                m2.eval()
                bad = {k: v for k, v in info.items() if v and k != "mismatched_keys"} | \
                    ({"mismatched": info["mismatched_keys"]} if info.get("mismatched_keys")
                     else {})
                check(not bad, "%s from_pretrained loading info %s" % (name, bad))
                if vit:
                    x = torch.randn(2, c.num_channels, c.image_size, c.image_size)
                    inp = {"pixel_values": x}
                else:
                    inp = {"input_ids": torch.tensor([[0, 5, 6, 7, 2], [0, 9, 2, 1, 1]]),
                           "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
                y = torch.randn(2) if labels == 1 else torch.tensor([1, 3])
                with torch.no_grad():
                    o1 = m(**inp).logits
                    o2 = m2(**inp, labels=y)
                check(o2.logits.shape == (2, labels), "%s logits shape" % name)
                sd2 = m2.state_dict()
                check(all(torch.equal(v, sd2[k]) for k, v in sd.items()),
                      "%s reloaded weights differ" % name)
                # same weights; only the summation order of the GEMMs may differ (alignment of the
                # mapped tensors), hence a float32 rounding tolerance rather than equality
                check(torch.allclose(o1, o2.logits, rtol=1e-5, atol=1e-6),
                      "%s reloaded logits differ (max %g)" % (name, (o1 - o2.logits).abs().max()))
                if labels == 1:
                    mse = torch.mean((o2.logits.squeeze(-1) - y) ** 2)
                    check(torch.allclose(o2.loss, mse, rtol=1e-6, atol=0), "%s: not MSE" % name)
                print("peftbench %s/%d config: AutoConfig ok, from_pretrained ok, forward ok"
                      % (name, labels))
            else:
                print("peftbench %s/%d config: AutoConfig ok" % (name, labels))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("safetensors", "config"):
        print(__doc__)
        return 2
    mode, binary, work = sys.argv[1:]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    if mode == "safetensors":
        st_python_to_c(binary, work)
        st_c_to_python(binary, work)
    else:
        cfg_python_to_c(binary, work)
        cfg_c_to_python(binary, work)
    if FAILS:
        print("%d failure(s)" % len(FAILS))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("st_fixtures %s: all passed" % mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
