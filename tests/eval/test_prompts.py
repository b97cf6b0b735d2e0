import random

import numpy as np
import pytest

from minimath.data.shards import DTYPE, ShardWriter
from minimath.eval.prompts import DOCUMENT_START, build_prompt
from minimath.eval.tasks import Doc, Task, heldout_task
from minimath.tokenizer import get_tokenizer

from conftest import embedded_heldout


def packed_window(tmp_path, documents: list[str]) -> list[int]:
    """Documents tokenized and packed as `prepare` does (ordinary encoding, `<|endoftext|>` after each)."""
    tok = get_tokenizer("qwen")
    writer = ShardWriter(tmp_path, "window", tok.eot_id)
    for text in documents:
        writer.add(tok.encode_ordinary(text))
    writer.flush()
    return np.fromfile(tmp_path / writer.shards[0].file, dtype=DTYPE).tolist()


def ids_before(ids: list[int], text_before: str) -> int:
    """How many leading ids decode to exactly `text_before` (the ids stop at a token boundary)."""
    tok = get_tokenizer("qwen")
    for k in range(len(ids) + 1):
        if tok.decode(ids[:k]) == text_before:
            return k
    raise AssertionError(f"{text_before!r} does not end at a token boundary")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_heldout_line_prompt_reads_like_a_training_document(tmp_path, lang):
    """The tokens before the question in an eval prompt are those before a problem line in a packed training
    window: the previous document's `<|endoftext|>`, the heading, the newline — and the question's own tokens match."""
    tok = get_tokenizer("qwen")
    source = embedded_heldout()["arithmetic"]
    training_doc = source.heading(lang) + "\n".join(source.line(random.Random(i)) for i in range(3))
    window = packed_window(tmp_path, ["Some earlier document.", training_doc])
    start = window.index(tok.eot_id) + 1  # the training document begins after the previous one's end
    first_line = training_doc[len(source.heading(lang)) :].split("\n")[0]
    question = first_line.rsplit(" = ", 1)[0] + " ="

    doc = Doc(question, "0", category="+", context=source.heading(lang))
    prompt_ids = tok.encode(
        build_prompt(Task("arithmetic", "numeric", [doc], prompt_style="line"), doc, [], "standard").text
    )
    k = ids_before(prompt_ids, DOCUMENT_START + source.heading(lang))
    k_train = ids_before(window[start - 1 :], DOCUMENT_START + source.heading(lang))
    assert prompt_ids[:k] == window[start - 1 : start - 1 + k_train] and k >= 2
    assert prompt_ids[k:] == window[start - 1 + k_train : start - 1 + k_train + len(prompt_ids) - k]


def test_every_prompt_starts_after_a_document_end():
    task = heldout_task("equations", 5, embedded_heldout()["equations"])
    for protocol in ("standard", "report"):
        text = build_prompt(task, task.docs[0], [], protocol).text
        assert (
            text.startswith("<|endoftext|>") and get_tokenizer("qwen").encode(text)[0] == get_tokenizer("qwen").eot_id
        )
    words = heldout_task("word_problems", 5, embedded_heldout()["word_problems"])
    assert build_prompt(words, words.docs[0], [], "standard").text.startswith(
        ("<|endoftext|>题目：", "<|endoftext|>Question: ")
    )
