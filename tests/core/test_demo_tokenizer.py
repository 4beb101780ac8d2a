"""llama.cpp reads the trained demo model as training wrote it: same token ids, same perplexity.

The reference data comes from ``tools/train_demo_model.py``: ``eval_tokens.npy`` holds the ids
``tokenizers`` gave ``assets/demo-eval.txt`` (without BOS), ``probe.json`` a few awkward strings
and their ids, ``training.json`` the per-chunk loss PyTorch computed with the F16-rounded weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "demo-llama.gguf"
TEXT = ROOT / "assets" / "demo-eval.txt"
DATA = ROOT / "tests" / "data" / "demo"
CTX = 512

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="trained demo model not checked out")


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp")


def test_llama_cpp_tokenizes_the_eval_text_exactly_as_training_did(llama_cpp):
    llm = llama_cpp.Llama(str(MODEL), vocab_only=True, verbose=False)
    ids = np.load(DATA / "eval_tokens.npy").tolist()
    got = llm.tokenize(TEXT.read_bytes(), add_bos=True, special=False)
    assert got[0] == llm.token_bos()
    assert got[1:] == ids


def test_llama_cpp_tokenizes_awkward_strings_as_training_did(llama_cpp):
    llm = llama_cpp.Llama(str(MODEL), vocab_only=True, verbose=False)
    probes = json.loads((DATA / "probe.json").read_text())
    assert len(probes) >= 5
    for probe in probes:
        assert llm.tokenize(probe["text"].encode("utf-8"), add_bos=False, special=False) == probe["ids"], probe
    assert llm.detokenize(probes[0]["ids"]).decode("utf-8") == probes[0]["text"]


def chunk_nll_llama_cpp(llm, tokens: list[int], n_chunk: int) -> np.ndarray:
    """Mean NLL per chunk as llama-perplexity scores it: first token of each chunk = BOS,
    positions ctx/2 ... ctx-2 predict the next token."""
    first, out = CTX // 2, []
    for k in range(n_chunk):
        chunk = tokens[k * CTX : (k + 1) * CTX]
        chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[first : CTX - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        logz = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
        out.append(float(np.mean(logz - logits[np.arange(len(logits)), chunk[first + 1 :]])))
    return np.asarray(out)


def test_llama_cpp_perplexity_matches_training_and_beats_unigram(llama_cpp):
    log = json.loads((DATA / "training.json").read_text())
    torch_nll = np.asarray(log["chunk_nll"][:6])
    llm = llama_cpp.Llama(str(MODEL), n_ctx=CTX, n_batch=CTX, logits_all=True, n_threads=2, verbose=False)
    tokens = llm.tokenize(TEXT.read_bytes(), add_bos=True, special=False)
    nll = chunk_nll_llama_cpp(llm, tokens, len(torch_nll))
    assert abs(nll.mean() - torch_nll.mean()) < 0.01  # perplexities within 1 %: the GGUF is the trained model
    scored = np.concatenate([tokens[k * CTX + CTX // 2 + 1 : (k + 1) * CTX] for k in range(len(nll))])
    freq = np.bincount(tokens) / len(tokens)  # unigram fitted on the text itself: a generous baseline
    assert np.exp(nll.mean()) < 0.5 * np.exp(-np.log(freq[scored]).mean())
