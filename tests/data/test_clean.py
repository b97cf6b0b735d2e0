from minimath.data.clean import Cleaner, NearDuplicateIndex, normalize


def test_normalize():
    assert normalize("cafe\u0301\r\nline  \t\n\n\n\nend\x00\u200b ") == "café\nline\n\nend"


def test_filters_and_exact_dedup():
    c = Cleaner(min_chars=10)
    assert c.reason("") == "empty document"
    assert c.reason("short") == "shorter than 10 characters"
    assert c.reason("long enough text") is None
    assert c.reason("long enough text") == "exact duplicate"


def test_near_duplicates():
    index = NearDuplicateIndex(threshold=0.7)
    base = "The quick brown fox jumps over the lazy dog while the farmer counts his twelve sheep in the field."
    assert index.add_if_new(base)
    assert not index.add_if_new(base.replace("twelve", "eleven"))
    assert index.add_if_new("Completely different: prime numbers have exactly two factors, one and themselves.")
