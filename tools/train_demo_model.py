"""Train the demo model in ``assets/``: a small llama-architecture LM on public-domain English text.

The texts are the Canterbury corpus files shipped in the ``brotli`` 1.2.1 source distribution::

    pip download --no-deps --no-binary :all: brotli==1.2.1 -d /tmp/brotli
    tar -xzf /tmp/brotli/brotli-1.2.1.tar.gz -C /tmp/brotli
    T=/tmp/brotli/brotli-1.2.1/tests/testdata

The training dependencies are pinned in ``tools/requirements-train.txt`` (a venv of their own; the
app never needs them)::

    python3 -m venv /work/trainenv && /work/trainenv/bin/pip install -r tools/requirements-train.txt

The committed model was made with the defaults (from the repository root; 26 minutes on 2 CPU
cores busy with other jobs, ``tests/data/demo/training.json`` has the loss curve)::

    /work/trainenv/bin/python tools/train_demo_model.py $T/alice29.txt $T/asyoulik.txt \
        $T/lcet10.txt $T/plrabn12.txt

What it does, all seeded (``--seed``; the same torch version and ``--threads`` give the same bytes):

1. Reads the texts (UTF-8, CRLF normalized to LF) and holds out the last 12 % of each
   (``--holdout``; or a whole text: ``--holdout alice29.txt``). The held-out text is never trained
   on, neither by the tokenizer nor by the model; it is written to ``assets/demo-eval.txt``.
2. Trains a byte-level BPE tokenizer (``--vocab`` tokens) on the other texts and saves the
   held-out text's ids to ``tests/data/demo/eval_tokens.npy`` (int32, *without* BOS: llama.cpp
   tokenizing the file with ``add_bos`` gives ``[BOS] + ids``).
3. Trains the model on random windows of ``--ctx`` tokens of the training texts (joined by EOS),
   each window's first token replaced by BOS, as ``llama-perplexity`` evaluates chunks.
4. Evaluates like ``llama-perplexity``: ``[BOS] + ids`` cut into chunks of ``--ctx`` tokens, the
   first token of each chunk replaced by BOS, only the second half of each chunk scored; with the
   weights rounded to F16 as written. Compares with a unigram model (training counts, add-one).
5. Writes ``assets/demo-llama.gguf`` (matrices F16, norms F32) and a training log
   ``tests/data/demo/training.json`` (arguments, loss curve, timings, perplexities).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_gguf import BOS_ID, EOS_ID, encode, train_tokenizer, write_gguf
from demo_llama import Llama, LlamaShape

ROOT = Path(__file__).resolve().parent.parent
NAME = "Quant Explorer demo (trained llama)"
# strings whose ids are saved so that a test can check llama.cpp's tokenizer on more than the ASCII eval text
PROBES = (
    'Hello, World! It\'s a naïve café, déjà vu; "quoted" -- text.',
    "  leading spaces\n\n\ttabs\tand   multiple    spaces  \nend",
    "Numbers: 3.14159, 1,000,000 and the 42nd; x2y3.",
    "Unicode: 日本語, Ελληνικά, emoji 🙂, a\u00a0no-break space.",
    "don't won't they'll I'm you've she'd it's DON'T",
    "CRLF\r\nline\r\n\r\ntrailing   ",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("texts", nargs="+", type=Path, help="UTF-8 text files (training and held-out)")
    p.add_argument("--holdout", default="0.12", help="a file name, or the fraction held out of each text")
    p.add_argument("--seed", type=int, default=20261129)
    p.add_argument("--steps", type=int, default=170, help="optimizer steps")
    p.add_argument("--batch", type=int, default=6, help="sequences per step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine decay to 10%%)")
    p.add_argument("--warmup", type=int, default=12, help="linear warm-up steps")
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-head-kv", type=int, default=2)
    p.add_argument("--n-ff", type=int, default=768)
    p.add_argument("--ctx", type=int, default=512, help="training window = evaluation chunk length")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=20, help="held-out loss on a few chunks every N steps")
    p.add_argument("--out", type=Path, default=ROOT / "assets" / "demo-llama.gguf")
    p.add_argument("--eval-text-out", type=Path, default=ROOT / "assets" / "demo-eval.txt")
    p.add_argument("--data-out", type=Path, default=ROOT / "tests" / "data" / "demo")
    p.add_argument("--checkpoint", type=Path, help="reuse this trained state if it exists, else save it there")
    return p.parse_args(argv)


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8").replace("\r\n", "\n")


def split_texts(paths: list[Path], holdout: str) -> tuple[list[str], str]:
    """(training texts, held-out text).

    ``holdout`` is either the file name of one text, held out whole, or a fraction such as
    ``0.12``: the last 12 % of every text (cut at a line start) is held out, the slices joined.
    """
    texts = {p.name: read_text(p) for p in paths}
    try:
        fraction = float(holdout)
    except ValueError:
        if holdout not in texts or len(texts) < 2:
            raise SystemExit(f"--holdout {holdout!r} must name one of several texts, or be a fraction") from None
        return [t for name, t in texts.items() if name != holdout], texts[holdout]
    if not 0.0 < fraction < 1.0:
        raise SystemExit(f"--holdout fraction must be between 0 and 1, not {fraction}")
    train, held = [], []
    for text in texts.values():
        cut = text.index("\n", int(len(text) * (1.0 - fraction))) + 1
        train.append(text[:cut])
        held.append(text[cut:].strip("\n"))
    return train, "\n\n".join(held) + "\n"


def batch_of_windows(stream: torch.Tensor, rng: np.random.Generator, batch: int, ctx: int):
    """(inputs, targets) for ``batch`` random windows of ``ctx`` tokens, first input token = BOS."""
    starts = rng.integers(0, len(stream) - ctx, size=batch)
    w = torch.stack([stream[s : s + ctx] for s in starts.tolist()])
    x = w[:, :-1].clone()
    x[:, 0] = BOS_ID
    return x, w[:, 1:]


def eval_chunks(ids: np.ndarray, ctx: int) -> torch.Tensor:
    """llama-perplexity's chunks of ``[BOS] + ids``: (n_chunk, ctx), first token of each = BOS."""
    stream = np.concatenate([[BOS_ID], ids]).astype(np.int64)
    n_chunk = len(stream) // ctx
    chunks = torch.from_numpy(stream[: n_chunk * ctx].reshape(n_chunk, ctx).copy())
    chunks[:, 0] = BOS_ID
    return chunks


@torch.no_grad()
def chunk_nll(model: Llama, chunks: torch.Tensor) -> np.ndarray:
    """Negative log-likelihood of the scored tokens (second half of each chunk), (n_chunk, ctx/2 - 1)."""
    ctx = chunks.shape[1]
    first = ctx // 2
    out = []
    for c in chunks:
        logits = model(c[None, : ctx - 1])[0, first:].double()
        out.append(F.cross_entropy(logits, c[first + 1 :], reduction="none").numpy())
    return np.stack(out)


def unigram_nll(train_ids: np.ndarray, chunks: torch.Tensor, n_vocab: int) -> np.ndarray:
    """The same scored tokens under add-one smoothed unigram frequencies of the training tokens."""
    counts = np.bincount(train_ids, minlength=n_vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    first = chunks.shape[1] // 2
    return -logp[chunks[:, first + 1 :].numpy()]


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))


def make_optimizer(model: Llama, lr: float) -> torch.optim.Optimizer:
    matrices = [p for p in model.parameters() if p.dim() == 2]
    others = [p for p in model.parameters() if p.dim() != 2]
    groups = [{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def train(model: Llama, stream: torch.Tensor, probe: torch.Tensor, args: argparse.Namespace) -> list[dict]:
    """Run the optimizer; return the loss curve (mean training loss since the last entry, held-out loss)."""
    rng = np.random.default_rng(args.seed)
    opt = make_optimizer(model, args.lr)
    curve, losses, t0 = [], [], time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        x, y = batch_of_windows(stream, rng, args.batch, args.ctx)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            model.eval()
            held = float(chunk_nll(model, probe).mean())
            model.train()
            curve.append(
                {
                    "step": step + 1,
                    "train_loss": float(np.mean(losses)),
                    "heldout_loss": held,
                    "seconds": round(time.time() - t0, 1),
                }
            )
            losses = []
            print(json.dumps(curve[-1]), flush=True)
    return curve


def f16_rounded(model: Llama) -> Llama:
    """The model with its matrices rounded to F16, as the GGUF stores them."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(p.half().float())
    return model


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    train_texts, held_text = split_texts(args.texts, args.holdout)
    t0 = time.time()
    tok = train_tokenizer(train_texts, args.vocab)
    train_ids = np.concatenate([np.append(encode(tok, t), EOS_ID) for t in train_texts]).astype(np.int32)
    held_ids = encode(tok, held_text)
    chunks = eval_chunks(held_ids, args.ctx)
    print(f"tokens: train {len(train_ids)}, held-out {len(held_ids)} ({len(chunks)} chunks of {args.ctx})")
    shape = LlamaShape(
        n_vocab=args.vocab,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_head_kv=args.n_head_kv,
        n_ff=args.n_ff,
        n_ctx=args.ctx,
    )
    model = Llama(shape)
    print(f"parameters: {model.n_params()}")
    probe = chunks[torch.linspace(0, len(chunks) - 1, 4).long()]
    if args.checkpoint and args.checkpoint.is_file():
        state = torch.load(args.checkpoint)
        model.load_state_dict(state["model"])
        curve, train_seconds = state["curve"], state["train_seconds"]
    else:
        curve = train(model, torch.from_numpy(train_ids.astype(np.int64)), probe, args)
        train_seconds = time.time() - t0
        if args.checkpoint:
            torch.save({"model": model.state_dict(), "curve": curve, "train_seconds": train_seconds}, args.checkpoint)
    model = f16_rounded(model.eval())
    nll, uni = chunk_nll(model, chunks), unigram_nll(train_ids, chunks, args.vocab)
    result = {
        "heldout_loss": float(nll.mean()),
        "heldout_ppl": float(np.exp(nll.mean())),
        "unigram_ppl": float(np.exp(uni.mean())),
        "scored_tokens": int(nll.size),
    }
    print(json.dumps(result))
    description = (
        f"Trained on Canterbury corpus texts (brotli 1.2.1 testdata), held out: {args.holdout} "
        "(assets/demo-eval.txt). Made by tools/train_demo_model.py."
    )
    tensors = [(n, t.detach().numpy()) for n, t in model.gguf_tensors()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(args.out, shape.as_dict(), tensors, tok, NAME, description)
    args.eval_text_out.write_bytes(held_text.encode("utf-8"))
    args.data_out.mkdir(parents=True, exist_ok=True)
    np.save(args.data_out / "eval_tokens.npy", held_ids)
    probes = [{"text": t, "ids": encode(tok, t).tolist()} for t in PROBES]
    (args.data_out / "probe.json").write_text(json.dumps(probes, ensure_ascii=False, indent=1) + "\n")
    log = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "texts"},
        "texts": [p.name for p in args.texts],
        "shape": shape.as_dict(),
        "parameters": model.n_params(),
        "train_tokens": len(train_ids),
        "torch": torch.__version__,
        "train_seconds": round(train_seconds, 1),
        "curve": curve,
        **result,
        "chunk_nll": [round(float(x), 6) for x in nll.mean(axis=1)],
    }
    (args.data_out / "training.json").write_text(json.dumps(log, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) in {train_seconds:.0f} s")


if __name__ == "__main__":
    main()
