import numpy as np
import pytest

from minimath.errors import UserError
from minimath.eval.prompts import protocol_texts
from minimath.tokenizer import (
    QWEN_NUM_RANKS,
    QWEN_PADDED_VOCAB,
    QWEN_SPECIAL_TOKENS,
    CompactTokenizer,
    get_tokenizer,
    padded_vocab_size,
    tokenizer_from_state,
)

# Ids published for Qwen's official tokenizer (the same BPE ranks and split pattern as Qwen-72B's).
QWEN_KNOWN_IDS = {
    "Hello world": [9707, 1879],
    "Hello, world! 123": [9707, 11, 1879, 0, 220, 16, 17, 18],
    "1+1=": [16, 10, 16, 28],
    "What is the capital of France?": [3838, 374, 279, 6722, 315, 9625, 30],
    "你好世界": [108386, 99489],
    "这是上下文。": [100346, 102285, 16744, 1773],
    "def foo(): return 42": [750, 15229, 4555, 470, 220, 19, 17],
    "system\n": [8948, 198],
    "<|im_start|>user\nHi<|im_end|>": [151644, 872, 198, 13048, 151645],
}

ROUND_TRIP_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "小明有 12 个苹果，吃了 3 个，还剩几个？答：12 - 3 = 9（个）。",
    "3.14159 × 2 = 6.28318; 1/3 ≈ 0.333",
    "tabs\tand   spaces\n\n\n  trailing   \n",
    "mixed 中文 and English 混合 text 123456789",
    "<|endoftext|><|im_start|>assistant\n<|extra_204|>",
    "emoji 🚀 and accents café",
]


@pytest.fixture(scope="module")
def qwen():
    return get_tokenizer("qwen")


@pytest.mark.parametrize("text,ids", QWEN_KNOWN_IDS.items())
def test_qwen_known_ids(qwen, text, ids):
    assert qwen.encode(text) == ids


def test_qwen_vocabulary_layout(qwen):
    assert qwen.vocab_size == QWEN_NUM_RANKS + len(QWEN_SPECIAL_TOKENS) == 151_851
    assert qwen.eot_id == 151_643
    assert qwen.encode("<|im_start|><|im_end|><|extra_0|><|extra_204|>") == [151644, 151645, 151646, 151850]
    assert padded_vocab_size(qwen.vocab_size, 128) == QWEN_PADDED_VOCAB


def test_qwen_splits_digits_one_per_token(qwen):
    ids = qwen.encode("2024")
    assert len(ids) == 4
    assert [qwen.decode([i]) for i in ids] == ["2", "0", "2", "4"]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_qwen_round_trip(qwen, text):
    assert qwen.decode(qwen.encode(text)) == text


def test_encode_ordinary_keeps_special_strings_as_text(qwen):
    ids = qwen.encode_ordinary("<|endoftext|>")
    assert qwen.eot_id not in ids and qwen.decode(ids) == "<|endoftext|>"


def test_qwen_normalises_to_nfc_like_the_official_tokenizer(qwen):
    assert qwen.encode("cafe\u0301") == qwen.encode("café")


def test_cl100k_base_offline():
    tok = get_tokenizer("cl100k_base")
    assert tok.encode("Hello world") == [9906, 1917]
    assert tok.eot_id == 100257
    assert tok.decode(tok.encode(ROUND_TRIP_TEXTS[1])) == ROUND_TRIP_TEXTS[1]


def test_tiktoken_file_path(tmp_path, qwen):
    from minimath.tokenizer import qwen_vocab_path

    path = tmp_path / "copy.tiktoken"
    path.write_bytes(qwen_vocab_path().read_bytes())
    tok = get_tokenizer(str(path))
    assert tok.encode("你好世界 123") == qwen.encode("你好世界 123")
    assert tok.eot_id == qwen.eot_id


def test_missing_and_malformed_vocabulary_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        get_tokenizer(str(tmp_path / "absent.tiktoken"))
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("not a rank line at all\n")
    with pytest.raises(UserError, match="bad.tiktoken:1"):
        get_tokenizer(str(bad))
    with pytest.raises(UserError, match="unknown tokenizer"):
        get_tokenizer("gpt5")


CORPUS = ["12 + 35 = 47\n9 × 8 = 72", "小明有 5 个苹果。", "The answer is 42."]


def test_compact_round_trip_and_density(qwen):
    tok = CompactTokenizer.from_corpus(qwen, CORPUS)
    for text in CORPUS + ["47 + 12 = 59", "The answer is 5."]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert max(ids) < tok.unk_id
    used = {i for text in CORPUS + list(protocol_texts()) for i in qwen.encode(text)}
    assert tok.vocab_size == len(used | set(qwen.special_ids)) + 1  # the corpus, the protocols' tokens, specials, unk
    assert tok.decode([tok.eot_id]) == "<|endoftext|>"


def test_compact_unknown_tokens(qwen):
    tok = CompactTokenizer.from_corpus(qwen, ["1 + 1 = 2"])
    ids = tok.encode("1 + zebra = 2")
    n_unknown = ids.count(tok.unk_id)
    assert n_unknown == len(qwen.encode(" zebra")) > 0
    assert tok.decode(ids) == "1 +" + "\N{REPLACEMENT CHARACTER}" * n_unknown + " = 2"


def test_compact_state_round_trip(qwen):
    tok = CompactTokenizer.from_corpus(qwen, CORPUS)
    again = tokenizer_from_state(tok.state_dict())
    assert np.array_equal(again.kept_ids, tok.kept_ids)
    assert again.encode(CORPUS[1]) == tok.encode(CORPUS[1])
    assert tokenizer_from_state(qwen.state_dict()).encode("Hello world") == [9707, 1879]
